"""The network as clients send and receive it: layers of weights ``[out][in]``, biases ``[out]``, activation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from app.nn.activations import ACTIVATIONS, LAST_LAYER_ONLY
from app.schemas.base import Matrix, NumberRow, StrictModel, field_error, joined, rectangular
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


class NetworkSpec(StrictModel):
    """A fully connected network; layer ``k``'s ``in`` equals layer ``k-1``'s ``out``."""

    layers: list[LayerSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _chain(self) -> NetworkSpec:
        for k, (prev, layer) in enumerate(zip(self.layers, self.layers[1:]), start=1):
            if layer.n_in != prev.n_out:
                field_error(
                    ("layers", k, "weights"),
                    f"layer {k} must take {counted(prev.n_out, 'input')} (layer {k - 1} has "
                    f"{counted(prev.n_out, 'output')}), but its weights have {counted(layer.n_in, 'column')}",
                    "shape_mismatch",
                )
        last = len(self.layers) - 1
        for k, layer in enumerate(self.layers[:-1]):
            if layer.activation in LAST_LAYER_ONLY:
                field_error(
                    ("layers", k, "activation"),
                    f"{layer.activation} is allowed on the last layer only (layer {last}), but layer {k} uses it",
                    "activation_position",
                )
        return self

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out
