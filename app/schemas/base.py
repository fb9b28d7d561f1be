"""The shared base model, finite float types, and errors located at a field."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import numpy as np
from numpy.typing import NDArray
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidatorFunctionWrapHandler,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

from app.nn.optimizers import OPTIMIZERS


class NumberArray:
    """Marks a type as an array of finite numbers (``depth`` 1) or of such arrays (2).

    app.api.large_body finds the mark to parse these arrays of a large body at C speed into
    float64 arrays instead of one Python float at a time. Validating JSON is unchanged; in
    Python (a model re-validated from another's fields, as DiagramRequest does) such an
    already validated float64 array is taken as it is, and serialized as it is."""

    def __init__(self, depth: int) -> None:
        self.depth = depth

    def __repr__(self) -> str:
        return f"NumberArray({self.depth})"

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        schema = handler(source)
        return core_schema.json_or_python_schema(
            json_schema=schema,
            python_schema=core_schema.no_info_wrap_validator_function(self._validated_array, schema),
            serialization=core_schema.wrap_serializer_function_ser_schema(_as_it_is_if_array, info_arg=True),
        )

    def _validated_array(self, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if (
            isinstance(value, np.ndarray)
            and value.dtype == np.float64
            and value.ndim == self.depth
            and value.size
            and np.isfinite(value).all()
        ):
            return value
        return handler(value)


def _as_it_is_if_array(value: Any, serializer: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist() if info.mode_is_json() else value
    return serializer(value)


NUMBER_ROW, NUMBER_MATRIX = NumberArray(1), NumberArray(2)

# Strict: a JSON string or boolean is not a number. allow_inf_nan=False: NaN, Infinity
# and literals like 1e400 (which parse to inf) are rejected with the field's location.
FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
NumberRow = Annotated[list[FiniteFloat], NUMBER_ROW]
Vector = Annotated[list[FiniteFloat], Field(min_length=1), NUMBER_ROW]
Matrix = Annotated[list[Vector], Field(min_length=1), NUMBER_MATRIX]
StrictInt = Annotated[int, Field(strict=True)]
StrictBool = Annotated[bool, Field(strict=True)]

Loc = tuple[str | int, ...]

# Error types raised by field_error; their messages already say what was found.
LOCATED_ERROR_TYPES = frozenset(
    {
        "ragged_matrix",
        "shape_mismatch",
        "activation_position",
        "loss_activation_mismatch",
        "target_range",
        "missing_dependency",
        # /v1/check's claims: iterations out of the training, claimed twice, or claimed in the other form.
        "iteration_range",
        "repeated_iteration",
        "claim_form",
        # /v1/graph's labels: a node the graph does not have, or a label that cannot be drawn.
        "unknown_node",
        "label_text",
        # A safetensors body that is not a valid file, or whose tensors cannot stand where they are named.
        "safetensors_invalid",
        # A number of a dtype float32 request beyond float32's range.
        "float32_range",
        # A network given in both forms (layers and state_dict), or activations without state_dict;
        # a state_dict key that is not <index>.weight or <index>.bias.
        "network_form",
        "state_dict_key",
        # Written by app.schemas.error_hints from pydantic's own errors.
        "not_2d",
        "unknown_field",
    }
    # An optimizer's combinations of hyper-parameters it refuses (nesterov_momentum: SGD's).
    | {kind for optimizer in OPTIMIZERS.values() for kind in optimizer.error_kinds}
)


class StrictModel(BaseModel):
    """Base of every request and response model: unknown fields are an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


def joined(words: Sequence[str], conjunction: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``: names from a table, said in a description or a message."""
    return "".join(words) if len(words) < 2 else f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


def quoted(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (then an ellipsis), for quoting client input."""
    return text if len(text) <= limit else text[:limit] + "..."


def describe(value: Any) -> str:
    """A short, JSON-safe description of a client-sent value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, int):
        text = str(value) if abs(value) < 10**30 else f"an integer of {len(str(abs(value)))} digits"
        return text
    if isinstance(value, str):
        return f"the string {value[:40]!r}" + ("..." if len(value) > 40 else "")
    if isinstance(value, list):
        return f"an array of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, bytes):
        return f"{len(value)} bytes that are not a JSON object"
    return type(value).__name__


def dotted(path: Sequence[str | int]) -> str:
    """A path into a body as a reader writes it: ``["claimed", "gradients", 1, "weights"]`` as ``claimed.gradients[1].weights``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def field_error(loc: Loc, message: str, kind: str) -> NoReturn:
    """Raise a ValidationError at ``loc`` (relative to the model being validated).

    Raised from a model validator it keeps its location, and an enclosing model
    prefixes its own, so nested checks can name the exact offending field.
    ``message`` says what was expected and what was found.
    """
    assert kind in LOCATED_ERROR_TYPES, kind
    raise ValidationError.from_exception_data(
        "request",
        [InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=None)],
    )


def rectangular(rows: Sequence[Sequence[float]] | NDArray[Any], loc: Loc, name: str) -> tuple[int, int]:
    """``(rows, columns)`` of a non-empty matrix; a ragged row is an error at ``loc + (i,)``."""
    if isinstance(rows, np.ndarray) and rows.ndim == 2:
        return rows.shape[0], rows.shape[1]  # a large body's matrix, parsed as float64: rectangular by construction
    width = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            field_error(
                loc + (i,),
                f"{name} must be rectangular: row 0 has {width} values, but row {i} has {len(row)}",
                "ragged_matrix",
            )
    return len(rows), width
