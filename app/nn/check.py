"""Check a learner's numbers: which are right, which follow from their own earlier numbers, and
which known mistake reproduces the rest.

A *problem* is what /v1/gradients (or /v1/train) takes. The learner *claims* any subset of the
numbers the computation produces, per iteration (one iteration when nothing trains):

- per layer ``k``: ``pre_activation[k]`` and ``activation[k]`` ``[batch][out_k]``, the ``output``
  ``[batch][out_last]`` (the last activation again) and the ``loss`` (a scalar);
- per layer ``k``: ``delta[k]`` = dLoss/d``pre_activation[k]`` ``[batch][out_k]``, and the
  ``weights`` ``[out_k][in_k]`` and ``biases`` ``[out_k]`` gradients;
- when training, the network after the iteration's update (weights and biases per layer).

Every claimed array is checked element by element three ways, by running the computation as
a *program* of quantities in computation order (:func:`run`):

1. **correct**: against the true value (the program with no claims);
2. **consistent**: against the value the correct step computes from the learner's *own*
   upstream values (a claimed element where there is one, the program's value elsewhere):
   error carried forward, as exam markers do;
3. **diagnosis**: against the value each *variant* of the program computes from those same
   upstream values. A variant (app.nn.mistakes) changes one step, the way people really get
   it wrong; every variant that reproduces a quantity that is neither correct nor consistent
   is reported for it.

The first claimed element that is neither correct nor consistent is where the learner should
look (``first_wrong``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from app.nn.errors import NonFiniteError, Stopped
from app.nn.layout import Layout
from app.nn.losses import Loss, Reduction
from app.nn.mistakes import ProblemShape, describe, skipped, variants
from app.nn.network import Layer, evaluate, unpack
from app.nn.optimizers import Optimizer
from app.nn.steps import Claimed, Key, Steps, run
from app.nn.training import TraceChunk, start_training

Array = NDArray[np.float64]
Mask = NDArray[np.bool_]
Path = tuple[str | int, ...]
Kind = Literal["pre_activation", "activation", "output", "loss", "delta", "gradients", "network"]
KINDS: tuple[Kind, ...] = ("pre_activation", "activation", "output", "loss", "delta", "gradients", "network")

# A "tiny" denominator for the relative error |a - b| / max(|a|, |b|, TINY), as CS231n's checkers
# write it: two values both below it compare by their absolute difference in units of it.
TINY = 1e-12


@dataclass(frozen=True)
class Tolerance:
    """An element is right when ``|claimed - expected| <= atol + rtol * max(|claimed|, |expected|)``.

    The default ``rtol`` 1e-4 is CS231n's "usually okay" bound for a relative error: a value
    rounded to five significant figures passes, one off in the fourth does not.
    """

    rtol: float = 1e-4
    atol: float = 1e-8

    def close(self, claimed: Array, expected: Array) -> Mask:
        """Elementwise: within the tolerance (a non-finite expected value never is)."""
        with np.errstate(all="ignore"):
            bound = self.atol + self.rtol * np.maximum(np.abs(claimed), np.abs(expected))
            ok: Mask = np.abs(claimed - expected) <= bound
        return ok & np.isfinite(expected)


@dataclass(frozen=True)
class StepClaims:
    """What a learner claims about one iteration (the only one when nothing trains).

    ``path`` is where these claims sit in the request's ``claimed`` (``()`` for a problem without
    training, ``("iterations", i)`` for the ``i``-th claimed iteration); every mapping is by layer.
    """

    iteration: int = 1
    path: Path = ()
    pre_activation: Mapping[int, Claimed] = field(default_factory=dict)
    activation: Mapping[int, Claimed] = field(default_factory=dict)
    output: Claimed | None = None
    loss: Claimed | None = None
    delta: Mapping[int, Claimed] = field(default_factory=dict)
    weight_gradients: Mapping[int, Claimed] = field(default_factory=dict)
    bias_gradients: Mapping[int, Claimed] = field(default_factory=dict)
    weights_after: Mapping[int, Claimed] = field(default_factory=dict)
    biases_after: Mapping[int, Claimed] = field(default_factory=dict)


@dataclass(frozen=True)
class Problem:
    """The computation the learner did: ``layers``, ``inputs`` ``[batch][in]``, ``targets``
    ``[batch][out_last]``, a bound ``loss`` and its ``reduction``; with an ``optimizer``,
    ``iterations`` full-batch steps of it on the parameters ``trainable`` marks (flat, in
    ``Layout.of(layers)`` order; None: all)."""

    layers: tuple[Layer, ...]
    inputs: Array
    targets: Array
    loss: Loss
    reduction: Reduction
    optimizer: Optimizer[Any] | None = None
    iterations: int = 1
    trainable: Mask | None = None

    @property
    def trains(self) -> bool:
        return self.optimizer is not None


@dataclass(frozen=True)
class Element:
    """The worst element of a claimed array against some expected value: its ``index`` in the
    array, the ``claimed`` and ``expected`` values (None when not finite) and their relative error
    ``|a - b| / max(|a|, |b|, 1e-12)`` (None when the expected value is not finite)."""

    index: tuple[int, ...]
    claimed: float
    expected: float | None
    rel_error: float | None
    ok: bool


@dataclass(frozen=True)
class QuantityCheck:
    """One claimed array, checked: ``path`` is its place in the request's ``claimed``."""

    path: Path
    kind: Kind
    iteration: int
    layer: int | None
    part: Literal["weights", "biases"] | None
    correct: bool
    worst: Element
    consistent: bool
    worst_given_claims: Element
    mistakes: tuple[int, ...]  # indices into CheckResult.diagnoses
    # The first element (row-major) that is neither correct nor consistent: the learner's own
    # mistake is there. None when every claimed element is one or the other.
    wrong_at: tuple[int, ...] | None = None

    @property
    def wrong(self) -> bool:
        return self.wrong_at is not None


@dataclass(frozen=True)
class Diagnosis:
    """A known mistake (app.nn.mistakes) that reproduces claimed quantities that are wrong:
    ``name`` (stable, for programs), ``description`` (for people), ``detail`` (its parameters,
    e.g. the layer) and the paths of the quantities it ``explains``."""

    name: str
    description: str
    detail: Mapping[str, Any]
    explains: tuple[Path, ...]


@dataclass(frozen=True)
class CheckResult:
    """Every claimed quantity in computation order, the first wrong element's path (None when
    every claimed number is correct or follows from the learner's own), the diagnoses, and how
    much of the variant search ran (``complete`` False when a limit stopped it early)."""

    quantities: tuple[QuantityCheck, ...]
    first_wrong: Path | None
    diagnoses: tuple[Diagnosis, ...]
    variants_tried: int
    variants_total: int
    # What the search left out and why (a network too large for the substitution search, the work limit).
    notes: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.variants_tried == self.variants_total


def run_problem(
    problem: Problem,
    steps: Steps,
    given: Mapping[Key, Claimed] | None = None,
    iterations: int | None = None,
    keep: Collection[Key] | None = None,
) -> dict[Key, Array]:
    """app.nn.steps.run on ``problem`` (its ``iterations`` unless given), with the learner's ``given``
    values, keeping the quantities in ``keep`` (all by default)."""
    return run(
        problem.layers,
        problem.inputs,
        problem.targets,
        problem.loss,
        problem.reduction,
        steps,
        given or {},
        problem.iterations if iterations is None else iterations,
        problem.optimizer,
        problem.trainable,
        keep=keep,
    )


def check(
    problem: Problem,
    claims: Sequence[StepClaims],
    tolerance: Tolerance = Tolerance(),
    *,
    max_variant_work: float = math.inf,
    should_stop: Callable[[], bool] | None = None,
) -> CheckResult:
    """``claims`` (at most one per iteration, each within ``problem.iterations``) checked against
    ``problem``. The variant search stops before its estimated work would pass ``max_variant_work``
    (multiply-adds, as ``check_work`` counts them); ``should_stop`` is asked between runs (Stopped)."""
    given = _given(claims)
    iterations = max((c.iteration for c in claims), default=1)

    def program(steps: Steps, claimed: Mapping[Key, Claimed]) -> dict[Key, Array]:
        if should_stop is not None and should_stop():
            raise Stopped
        return run_problem(problem, steps, claimed, iterations, keep=given)

    truth = program(Steps(), {})
    truth.update(_engine_values(problem, iterations, truth))
    learner = program(Steps(), given)
    found = [_quantity(key, given[key], truth[key], learner[key], tolerance, place) for key, place in _in_order(claims, truth)]
    wrong = [(i, key) for i, (key, q) in enumerate(zip(_keys(claims, truth), found)) if q.wrong]

    one_run, _ = check_work(problem, claims)
    candidates = variants(_shape(problem)) if wrong else []
    affordable = len(candidates) if math.isinf(max_variant_work) else int(max(0.0, max_variant_work) // max(one_run, 1))
    diagnoses: list[Diagnosis] = []
    explained: dict[int, list[int]] = {}
    tried = 0
    for variant in candidates[:affordable]:
        tried += 1
        values = program(variant, given)
        hits = [i for i, key in wrong if _reproduces(given[key], values[key], tolerance)]
        if hits:
            for i in hits:
                explained.setdefault(i, []).append(len(diagnoses))
            diagnoses.append(Diagnosis(variant.name, describe(variant), variant.detail, tuple(found[i].path for i in hits)))
    quantities = tuple(replace(q, mistakes=tuple(explained.get(i, ()))) for i, q in enumerate(found))
    first = next((q for q in quantities if q.wrong_at is not None), None)
    first_wrong = None if first is None or first.wrong_at is None else first.path + first.wrong_at
    notes = skipped(_shape(problem)) if wrong else ()
    if tried < len(candidates):
        notes += (f"the search stopped after {tried} of {len(candidates)} variants, at the work limit",)
    return CheckResult(quantities, first_wrong, tuple(diagnoses), tried, len(candidates), notes)


def _engine_values(problem: Problem, iterations: int, keys: Mapping[Key, Array]) -> dict[Key, Array]:
    """The true values as /v1/gradients and /v1/train compute them, bit for bit, wherever the engine
    computes them (the program agrees to rounding; its own values stay for the deltas). Raises
    NonFiniteError, as those endpoints do, when the first pass already overflows."""
    x, y, loss, reduction = problem.inputs, problem.targets, problem.loss, problem.reduction
    out: dict[Key, Array] = {}

    def passes(it: int, layers: Sequence[Layer]) -> None:
        ev = evaluate(layers, x, y, loss, reduction)
        out[(it, "loss", None, None)] = np.asarray(ev.loss)
        out[(it, "output", None, None)] = ev.forward.output
        for k, (z, a) in enumerate(zip(ev.forward.pre, ev.forward.post)):
            out[(it, "pre_activation", k, None)] = z
            out[(it, "activation", k, None)] = a
        assert ev.gradient is not None
        for k, (w, b) in enumerate(ev.layout.views(ev.gradient)):
            out[(it, "gradients", k, "weights")] = w
            out[(it, "gradients", k, "biases")] = b

    needed = {key[0] for key in keys if key[1] != "network"}
    networks = {key[0] for key in keys if key[1] == "network"}
    if 1 in needed:
        passes(1, problem.layers)
    if problem.optimizer is not None and (networks or needed - {1}):
        # Chunk by chunk, keeping only the claimed iterations' networks and passes: a long training's
        # history is never held whole.
        chunks = start_training(
            problem.layers, x, y, loss, reduction, problem.optimizer, iterations, record=frozenset({"network"}), trainable=problem.trainable
        )
        layout = Layout.of(problem.layers)
        for chunk in chunks:
            if not isinstance(chunk, TraceChunk) or chunk.params is None:
                continue
            for it, params in zip(chunk.iterations.tolist(), chunk.params):
                if it in networks:
                    for k, (w, b) in enumerate(layout.views(params.copy())):
                        out[(it, "network", k, "weights")] = w
                        out[(it, "network", k, "biases")] = b
                if it + 1 in needed and it < iterations:
                    try:
                        passes(it + 1, unpack(layout, params.copy()))
                    except NonFiniteError:  # diverged: the program's (non-finite) values stay
                        return _kept_values(out, keys)
    return _kept_values(out, keys)


def _kept_values(out: Mapping[Key, Any], keys: Mapping[Key, Array]) -> dict[Key, Array]:
    return {key: np.asarray(value, dtype=np.float64).copy() for key, value in out.items() if key in keys}


def variant_count(shape: ProblemShape) -> int:
    """How many variants the search for known mistakes tries on a problem of ``shape``, at most."""
    return len(variants(shape))


def check_work(problem: Problem, claims: Sequence[StepClaims]) -> tuple[int, int]:
    """``(work of one run of the program, number of variants)``, in the engine's unit (a multiply-add,
    about half a nanosecond): a run is plain numpy, a few dozen whole-array operations per layer and
    iteration, so it costs about ``STEP_ELEMENT_WORK`` per sample and unit on top of the batch x
    parameters of its products, and a fixed ``STEP_LAYER_WORK`` per layer (measured: 60-200 ns per
    sample and unit, 70 us per layer of a one-sample run). A check makes two runs, plus one per
    variant when something is wrong."""
    iterations = max((c.iteration for c in claims), default=1)
    per_iteration = program_work([layer.shape for layer in problem.layers], len(problem.inputs))
    return iterations * per_iteration, variant_count(_shape(problem))


def program_work(shapes: Sequence[tuple[int, int]], batch: int) -> int:
    """One iteration of one run of the program for layers of ``shapes`` (``(out, in)`` each) and ``batch``
    samples, in the engine's unit (see ``check_work``)."""
    parameters = sum(n_out * (n_in + 1) for n_out, n_in in shapes)
    units = sum(n_out for n_out, _ in shapes)
    return batch * (parameters + STEP_ELEMENT_WORK * units) + STEP_LAYER_WORK * len(shapes)


STEP_ELEMENT_WORK = 400
STEP_LAYER_WORK = 150_000


# -- claims as the program's keys ---------------------------------------------------------------


def _entries(c: StepClaims) -> Iterator[tuple[Key, Claimed, Path, Kind, int | None, Literal["weights", "biases"] | None]]:
    it = c.iteration
    for k, claim in c.pre_activation.items():
        yield (it, "pre_activation", k, None), claim, ("layers", k, "pre_activation"), "pre_activation", k, None
    for k, claim in c.activation.items():
        yield (it, "activation", k, None), claim, ("layers", k, "activation"), "activation", k, None
    if c.output is not None:
        yield (it, "output", None, None), c.output, ("output",), "output", None, None
    if c.loss is not None:
        yield (it, "loss", None, None), c.loss, ("loss",), "loss", None, None
    for k, claim in c.delta.items():
        yield (it, "delta", k, None), claim, ("layers", k, "delta"), "delta", k, None
    for k, claim in c.weight_gradients.items():
        yield (it, "gradients", k, "weights"), claim, ("gradients", k, "weights"), "gradients", k, "weights"
    for k, claim in c.bias_gradients.items():
        yield (it, "gradients", k, "biases"), claim, ("gradients", k, "biases"), "gradients", k, "biases"
    for k, claim in c.weights_after.items():
        yield (it, "network", k, "weights"), claim, ("network", "layers", k, "weights"), "network", k, "weights"
    for k, claim in c.biases_after.items():
        yield (it, "network", k, "biases"), claim, ("network", "layers", k, "biases"), "network", k, "biases"


@dataclass(frozen=True)
class _Place:
    path: Path
    kind: Kind
    iteration: int
    layer: int | None
    part: Literal["weights", "biases"] | None


def _given(claims: Sequence[StepClaims]) -> dict[Key, Claimed]:
    given: dict[Key, Claimed] = {}
    for c in claims:
        for key, claim, *_ in _entries(c):
            if claim.mask.any():
                given[key] = Claimed(claim.values, claim.mask)
    return given


def _in_order(claims: Sequence[StepClaims], truth: Mapping[Key, Array]) -> list[tuple[Key, _Place]]:
    """The claimed quantities in computation order (the order ``run`` computes them in)."""
    places: dict[Key, _Place] = {}
    for c in claims:
        for key, claim, sub, kind, layer, part in _entries(c):
            if claim.mask.any():
                places[key] = _Place(c.path + sub, kind, c.iteration, layer, part)
    return [(key, places[key]) for key in truth if key in places]


def _keys(claims: Sequence[StepClaims], truth: Mapping[Key, Array]) -> list[Key]:
    return [key for key, _ in _in_order(claims, truth)]


def _quantity(key: Key, claim: Claimed, true: Array, learner: Array, tolerance: Tolerance, place: _Place) -> QuantityCheck:
    worst = _worst(claim, true, tolerance)
    worst_given = _worst(claim, learner, tolerance)
    a = np.broadcast_to(claim.values, true.shape)
    bad = np.broadcast_to(claim.mask, true.shape) & ~tolerance.close(a, true) & ~tolerance.close(a, learner)
    wrong_at = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), true.shape)) if bad.any() else None
    return QuantityCheck(
        place.path, place.kind, place.iteration, place.layer, place.part, worst.ok, worst, worst_given.ok, worst_given, (), wrong_at
    )


def _worst(claim: Claimed, expected: Array, tolerance: Tolerance) -> Element:
    """The claimed element furthest outside (or least inside) the tolerance around ``expected``."""
    a = np.broadcast_to(claim.values, expected.shape)
    mask = np.broadcast_to(claim.mask, expected.shape)
    with np.errstate(all="ignore"):
        excess = np.abs(a - expected) / (tolerance.atol + tolerance.rtol * np.maximum(np.abs(a), np.abs(expected)))
    excess = np.where(np.isfinite(expected), excess, np.inf)
    excess = np.where(mask, np.nan_to_num(excess, nan=np.inf), -1.0)
    flat = int(np.argmax(excess))
    index = tuple(int(i) for i in np.unravel_index(flat, expected.shape)) if expected.ndim else ()
    claimed, exp = float(a[index]), float(expected[index])
    ok = bool(tolerance.close(a[mask], expected[mask]).all())
    if not math.isfinite(exp):
        return Element(index, claimed, None, None, ok)
    # Both scaled by the larger first: their difference cannot overflow (1e308 - -1e308).
    scale = max(abs(claimed), abs(exp), TINY)
    return Element(index, claimed, exp, abs(claimed / scale - exp / scale), ok)


def _reproduces(claim: Claimed, values: Array, tolerance: Tolerance) -> bool:
    a = np.broadcast_to(claim.values, values.shape)
    mask = np.broadcast_to(claim.mask, values.shape)
    return bool(tolerance.close(a[mask], values[mask]).all())


def _shape(problem: Problem) -> ProblemShape:
    return ProblemShape.of(Layout.of(problem.layers), len(problem.inputs), problem.loss, problem.reduction, problem.optimizer)
