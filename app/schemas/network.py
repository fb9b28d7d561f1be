"""The network as clients send and receive it: layers of weights ``[out][in]``, biases ``[out]``, activation;
or a PyTorch ``state_dict`` of an ``nn.Sequential`` of ``Linear`` layers and one activation per layer."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import numpy as np
from pydantic import Discriminator, Field, Tag, ValidationError, model_validator
from pydantic_core import InitErrorDetails

from app.nn.activations import ACTIVATIONS, LAST_LAYER_ONLY
from app.schemas.base import Loc, Matrix, NumberRow, StrictModel, field_error, joined, quoted, rectangular
from app.schemas.error_hints import counted

# The names, their order and the description all come from the engine's table: an activation
# is added there alone.
if TYPE_CHECKING:
    ActivationName = str
else:
    ActivationName = Literal[tuple(ACTIVATIONS)]
_LAST_ONLY = [name for name in ACTIVATIONS if name in LAST_LAYER_ONLY]
ACTIVATION_DESCRIPTION = (
    ", ".join(act.note for act in ACTIVATIONS.values() if act.note)
    + f"; {joined(_LAST_ONLY)} {'is' if len(_LAST_ONLY) == 1 else 'are'} allowed on the last layer only."
)


class LayerSpec(StrictModel):
    """One dense layer: ``pre_activation = inputs @ weights.T + biases``, then ``activation``."""

    weights: Matrix = Field(description="Shape [out][in] (the torch.nn.Linear convention).")
    biases: NumberRow | None = Field(default=None, description="Length out; omitted means zeros.")
    activation: ActivationName = Field(default="identity", description=ACTIVATION_DESCRIPTION)

    @model_validator(mode="after")
    def _shapes(self) -> LayerSpec:
        out, _ = rectangular(self.weights, ("weights",), "weights")
        if self.biases is not None and len(self.biases) != out:
            field_error(
                ("biases",),
                f"biases must have one value per output unit: weights have {counted(out, 'row')}, "
                f"but biases has {counted(len(self.biases), 'value')}",
                "shape_mismatch",
            )
        return self

    @property
    def n_out(self) -> int:
        return len(self.weights)

    @property
    def n_in(self) -> int:
        return len(self.weights[0])


# -- the state_dict form ----------------------------------------------------------------------

# What torch names the parameters of an nn.Sequential's Linear layers: "<index>.weight", "<index>.bias"
# (the index of the module in the Sequential, the activation modules between them counted).
STATE_DICT_KEY = re.compile(r"(0|[1-9][0-9]*)\.(weight|bias)")
_KEY_PATTERN = f"^{STATE_DICT_KEY.pattern}$"
_KEY_WORDS = "<index>.weight or <index>.bias (torch's names in an nn.Sequential of Linear layers: 0.weight, 0.bias, 2.weight, ...)"


def _entry_form(value: Any) -> str:
    """Which parameter ``value`` is meant to be: a weight ``[out][in]`` when it is an array of arrays,
    else a bias ``[out]`` (what its key says is checked after; this sees only the value)."""
    if isinstance(value, np.ndarray):
        return "weight" if value.ndim == 2 else "bias"
    return "weight" if isinstance(value, list) and value and isinstance(value[0], list) else "bias"


StateDictEntry = Annotated[
    Annotated[Matrix, Tag("weight"), Field(title="Weight", description="<index>.weight: shape [out][in], a Linear layer's weight.")]
    | Annotated[NumberRow, Tag("bias"), Field(title="Bias", description="<index>.bias: length out, a Linear layer's bias.")],
    Discriminator(_entry_form),
]
StateDict = Annotated[dict[str, StateDictEntry], Field(min_length=1, json_schema_extra={"propertyNames": {"pattern": _KEY_PATTERN}})]

LAYERS_DESCRIPTION = "The layers, in order. A network is either layers, or state_dict with activations."
STATE_DICT_DESCRIPTION = (
    "Instead of layers: the state_dict of a torch.nn.Sequential of Linear layers (model.state_dict(), each tensor "
    "as nested arrays), keys <index>.weight [out][in] and <index>.bias [out] (omitted: zeros that never train, "
    "as a Linear without bias); the layers in increasing order of their index (torch counts the activation "
    "modules between them: 0, 2, 4, ...). A network returned (the trained one, a trace's) comes back in this "
    "form, with the same keys."
)
ACTIVATIONS_DESCRIPTION = (
    f"With state_dict: each Linear layer's activation, one per <index>.weight, in the layers' order. {ACTIVATION_DESCRIPTION}"
)


class _DerivedLayers(list[LayerSpec]):
    """``layers`` as derived from a ``state_dict``: never serialized (the network is dumped as it was sent)."""


def _derived(value: Any) -> bool:
    return isinstance(value, _DerivedLayers)


def _absent(value: Any) -> bool:
    return value is None


def _missing(loc: Loc) -> NoReturn:
    """Pydantic's own "Field required" at ``loc``."""
    raise ValidationError.from_exception_data("request", [InitErrorDetails(type="missing", loc=loc, input={})])


class NetworkSpec(StrictModel):
    """A fully connected network; layer ``k``'s ``in`` equals layer ``k-1``'s ``out``. Either ``layers``, or
    ``state_dict`` (a torch nn.Sequential of Linear layers) with ``activations``."""

    # After validation ``layers`` holds the layers in both forms: derived from ``state_dict`` in the second,
    # and then left out of a dump (the network is dumped in the form it was sent).
    layers: list[LayerSpec] = Field(default_factory=list, min_length=1, exclude_if=_derived, description=LAYERS_DESCRIPTION)
    state_dict: StateDict | None = Field(default=None, exclude_if=_absent, description=STATE_DICT_DESCRIPTION)
    activations: list[ActivationName] | None = Field(default=None, exclude_if=_absent, description=ACTIVATIONS_DESCRIPTION)

    @model_validator(mode="after")
    def _one_form(self) -> NetworkSpec:
        if self.state_dict is None:
            if "layers" not in self.model_fields_set:
                _missing(("layers",))
            if self.activations is not None:
                field_error(
                    ("activations",),
                    "activations go with state_dict (one per <index>.weight); with layers, each layer names its own activation",
                    "network_form",
                )
            _check_chain(self.layers, lambda k: ("layers", k, "weights"), lambda k: ("layers", k, "activation"), None)
            return self
        if "layers" in self.model_fields_set:
            field_error(
                ("state_dict",),
                "a network is either layers or state_dict with activations, not both: this one has both",
                "network_form",
            )
        # Set in place of the field (not as the client's): a dump still leaves it out.
        self.__dict__["layers"] = _DerivedLayers(_state_dict_layers(self.state_dict, self.activations))
        return self

    @property
    def state_dict_keys(self) -> list[tuple[str, str | None]] | None:
        """Per layer, in order, its ``<index>.weight`` key and ``<index>.bias`` key (None when the bias was
        not sent); None for a network sent as ``layers``."""
        if self.state_dict is None:
            return None
        return [(weight, bias) for _, weight, bias in _layer_keys(self.state_dict)]

    def where(self, layer: int | None = None) -> Loc:
        """The location, relative to the network, of its layers (``layer`` None) or of layer ``layer`` in the
        form it was sent: ``("layers", k)``, or ``("state_dict", "<index>.weight")``."""
        keys = self.state_dict_keys
        if keys is None:
            return ("layers",) if layer is None else ("layers", layer)
        return ("state_dict",) if layer is None else ("state_dict", keys[layer][0])

    def parameter_where(self, layer: int, kind: Literal["weights", "biases"]) -> Loc:
        """The location, relative to the network, of layer ``layer``'s ``kind`` as it was sent:
        ``("layers", k, "weights")``, or its state_dict key (``("state_dict", "2.bias")``)."""
        keys = self.state_dict_keys
        key = None if keys is None else keys[layer][0 if kind == "weights" else 1]
        return ("layers", layer, kind) if key is None else ("state_dict", key)

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out


def _layer_keys(state_dict: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """``(index, weight key, bias key or None)`` per layer, in increasing order of the index; raises at
    the first key that is not ``<index>.weight|bias`` and at a bias without its weight."""
    weights: dict[str, str] = {}
    biases: dict[str, str] = {}
    for key in state_dict:
        found = STATE_DICT_KEY.fullmatch(key)
        if found is None:
            field_error(
                ("state_dict", key),
                f"a state_dict key must be {_KEY_WORDS}, but is {quoted(key, 64)!r}",
                "state_dict_key",
            )
        (weights if found[2] == "weight" else biases)[found[1]] = key
    for index, key in biases.items():
        if index not in weights:
            field_error(
                ("state_dict", key),
                f"{key} is the bias of a Linear layer whose weight ({index}.weight) is missing",
                "missing_dependency",
            )
    # Decimal indices without leading zeros: in increasing order by length, then digits (no int() of a huge key).
    order = sorted(weights, key=lambda index: (len(index), index))
    return [(index, weights[index], biases.get(index)) for index in order]


def _state_dict_layers(state_dict: dict[str, Any], activations: list[str] | None) -> list[LayerSpec]:
    """The layers of a validated ``state_dict`` form, every check located at the client's key."""
    keys = _layer_keys(state_dict)
    for _, weight, bias in keys:
        if _entry_form(state_dict[weight]) != "weight":
            field_error(
                ("state_dict", weight),
                f"{weight} must be 2-D [out][in], one row per output unit (a Linear layer's weight), but is {_described(state_dict[weight])}",
                "not_2d",
            )
        if bias is not None and _entry_form(state_dict[bias]) != "bias":
            field_error(
                ("state_dict", bias),
                f"{bias} must be 1-D [out], one value per output unit (a Linear layer's bias), but is an array of arrays",
                "shape_mismatch",
            )
    if activations is None:
        field_error(
            ("activations",),
            f"state_dict needs activations, one per Linear layer ({counted(len(keys), 'weight')} here), but activations is missing",
            "missing_dependency",
        )
    if len(activations) != len(keys):
        field_error(
            ("activations",),
            f"activations must name one activation per Linear layer: state_dict has {counted(len(keys), 'weight')} "
            f"({joined([weight for _, weight, _ in keys][:5] + (['...'] if len(keys) > 5 else []))}), "
            f"but activations has {counted(len(activations), 'name')}",
            "shape_mismatch",
        )
    layers: list[LayerSpec] = []
    for (_, weight, bias), activation in zip(keys, activations):
        out, _ = rectangular(state_dict[weight], ("state_dict", weight), weight)
        biases = None if bias is None else state_dict[bias]
        if bias is not None and len(state_dict[bias]) != out:
            field_error(
                ("state_dict", bias),
                f"{bias} must have one value per output unit: {weight} has {counted(out, 'row')}, "
                f"but {bias} has {counted(len(state_dict[bias]), 'value')}",
                "shape_mismatch",
            )
        layers.append(LayerSpec.model_construct(weights=state_dict[weight], biases=biases, activation=activation))
    names = [weight for _, weight, _ in keys]
    _check_chain(layers, lambda k: ("state_dict", names[k]), lambda k: ("activations", k), names)
    return layers


def _described(value: Any) -> str:
    n = len(value)
    return "an empty array" if n == 0 else f"an array of {counted(n, 'number')}"


def _check_chain(
    layers: Sequence[LayerSpec], weights_loc: Callable[[int], Loc], activation_loc: Callable[[int], Loc], names: list[str] | None
) -> None:
    """Each layer takes the outputs of the one before; a last-layer-only activation is on the last layer.
    ``names``: the layers' weight keys (state_dict form), which the messages then name."""
    for k, (prev, layer) in enumerate(zip(layers, layers[1:]), start=1):
        if layer.n_in != prev.n_out:
            if names is None:
                message = (
                    f"layer {k} must take {counted(prev.n_out, 'input')} (layer {k - 1} has "
                    f"{counted(prev.n_out, 'output')}), but its weights have {counted(layer.n_in, 'column')}"
                )
            else:
                message = (
                    f"{names[k]} must have {counted(prev.n_out, 'column')}, one per output of the layer before "
                    f"({names[k - 1]} has {counted(prev.n_out, 'row')}), but has {counted(layer.n_in, 'column')}"
                )
            field_error(weights_loc(k), message, "shape_mismatch")
    last = len(layers) - 1
    for k, layer in enumerate(layers[:-1]):
        if layer.activation in LAST_LAYER_ONLY:
            where = f"layer {last}" if names is None else f"layer {last}, {names[last]}"
            used = f"layer {k}" if names is None else f"layer {k} ({names[k]})"
            field_error(
                activation_loc(k),
                f"{layer.activation} is allowed on the last layer only ({where}), but {used} uses it",
                "activation_position",
            )
