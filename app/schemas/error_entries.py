"""The contract's error entries (``{"loc", "msg", "type"}``) from pydantic's errors and the engine's
failures: the one place both the HTTP layer (app.api.errors) and the CLI's ``--local`` say them.

An entry never echoes what the client sent (FastAPI's default handler does, and a NaN or 1e400
there would make the error itself unserialisable), only a short description of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from app.nn.errors import NonFiniteError
from app.schemas.base import LOCATED_ERROR_TYPES, describe
from app.schemas.error_hints import readable
from app.schemas.network import NetworkSpec

Entry = dict[str, Any]

MAX_REPORTED_ERRORS = 100
QUANTITY_WORDS = {
    "pre_activation": "pre-activation",
    "activation": "activation",
    "loss": "loss (computed from its output)",
    "gradient": "gradient",
    "numerical gradient": "numerical gradient (the loss at a parameter plus or minus epsilon)",
}


@dataclass(frozen=True)
class BodyErrors:
    """A body's first errors, said as a client can act on them and located under ``body``; ``more``
    counts the rest (a lower bound when ``at_least``)."""

    shown: list[dict[str, Any]]
    more: int
    at_least: bool


def body_errors(errors: Sequence[Any], model: type[BaseModel], more: int = 0, at_least: bool = False) -> BodyErrors:
    """The first MAX_REPORTED_ERRORS of pydantic's ``errors`` for a ``model`` body (app.schemas.error_hints
    rewrites them), the count of the rest and of ``more`` (counted but never built: a large body's)."""
    # A flat array where rows belong is one error however many numbers it has: read past the cap.
    considered = list(errors[: 2 * MAX_REPORTED_ERRORS])
    said = readable(considered, model)
    shown = said[:MAX_REPORTED_ERRORS]
    located = [{**error, "loc": ("body", *error["loc"])} for error in shown]
    return BodyErrors(located, len(said) - len(shown) + len(errors) - len(considered) + more, at_least)


def error_entries(errors: Sequence[Any], more: int = 0, at_least: bool = False) -> list[Entry]:
    """Pydantic's errors as the contract's ``detail`` entries: no echoed input, a described one in ``msg``.

    At most MAX_REPORTED_ERRORS entries, then one that counts the rest: those of ``errors``
    beyond the cap plus ``more``, errors that were counted but never built (a large body's,
    app.api.large_body). ``at_least``: some were not even counted (a large block of a type
    whose failing elements are not simply known was cut), so the count is a lower bound.
    """
    entries = [{"loc": list(error["loc"]), "msg": _message(error), "type": error["type"]} for error in errors[:MAX_REPORTED_ERRORS]]
    hidden = max(0, len(errors) - MAX_REPORTED_ERRORS) + more
    if hidden:
        # A body with a million bad numbers should not get a million-entry answer.
        count = f"at least {hidden}" if at_least else f"{hidden}"
        entries.append({"loc": ["body"], "msg": f"{count} more errors like these were found", "type": "too_many_errors"})
    return entries


def _message(error: dict[str, Any]) -> str:
    kind, msg = error["type"], str(error["msg"])
    if kind == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "malformed")
        return f"the body is not valid JSON: {reason}"
    if kind in LOCATED_ERROR_TYPES or kind == "missing":
        return msg
    return f"{msg}; found {describe(error.get('input'))}"


def non_finite_entry(exc: NonFiniteError, network: NetworkSpec | None = None, dtype: str = "float64") -> Entry:
    """The entry of a computation that overflowed although every input was finite, located at the layer as
    ``network`` (the request's, when known) was sent; ``dtype`` what it computed in."""
    what = QUANTITY_WORDS.get(exc.quantity, exc.quantity)
    where = ("layers", exc.layer) if network is None else network.where(exc.layer)
    named = f"layer {exc.layer}" if where[0] == "layers" else f"layer {exc.layer} ({where[1]})"
    msg = (
        f"{named}'s {what} overflowed to a non-finite value (inf or NaN) although every input "
        f"was finite; expected values that stay within {dtype} range (scale down weights or inputs"
        + (", or send dtype float64)" if dtype == "float32" else ")")
    )
    return {"loc": ["body", "network", *where], "msg": msg, "type": "non_finite"}


def limit_entry(loc: Sequence[str | int], message: str) -> Entry:
    """The entry of a request over a configured limit (answered 413)."""
    return {"loc": ["body", *loc], "msg": message, "type": "limit_exceeded"}


def graphviz_missing_entry(message: str) -> Entry:
    """The entry of a picture that Graphviz would lay out on a server without it (answered 501)."""
    return {"loc": [], "msg": f"{message}; ask with Accept: application/json or text/vnd.graphviz", "type": "graphviz_missing"}
