"""``POST /v1/check``: a learner's numbers checked, scored and, where wrong, diagnosed."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from app.config import Settings
from app.nn.check import CheckResult, Element, Path, StepClaims, Tolerance, check, check_work
from app.nn.steps import Claimed
from app.schemas.requests import CheckRequest, IterationClaim, ParameterClaim, StepClaim
from app.service.conversion import to_problem
from app.service.limits import CHECK_RUNS, check_limits, check_output
from app.service.payloads import CheckPayload, DiagnosisPayload, ElementPayload, QuantityPayload, SearchPayload
from app.service.stop import should_stop

# Numbers in the answer per claimed array: its path, two elements (index, claimed, expected, error)
# and the rest of its entry, with room for the diagnoses' paths to it.
VALUES_PER_QUANTITY = 40


def run_check(req: CheckRequest, settings: Settings) -> CheckPayload:
    """The CheckResponse payload. The check itself (two runs up to the last claimed iteration) is within
    the limits like any request's work; the search for known mistakes gets what BACKPROP_MAX_WORK leaves."""
    check_limits(req, settings, iterations=req.last_iteration, runs=CHECK_RUNS)
    check_output(VALUES_PER_QUANTITY * claimed_arrays(req), settings, ("claimed",), "a result per claimed array")
    problem, claims = to_problem(req), to_claims(req)
    run_work, _ = check_work(problem, claims)
    budget = max(0.0, settings.max_work - CHECK_RUNS * run_work)
    tolerance = Tolerance(rtol=req.tolerance.rtol, atol=req.tolerance.atol)
    result = check(problem, claims, tolerance, max_variant_work=budget, should_stop=should_stop)
    return check_payload(req, result)


def claimed_arrays(req: CheckRequest) -> int:
    """The arrays (and losses) ``req`` claims, counting those of only nulls: what the answer's size grows with."""
    count = 0
    for _, _, claim in req.steps:
        count += sum(_given(layer.pre_activation, layer.activation, layer.delta) for layer in claim.layers or () if layer is not None)
        count += _given(claim.output, claim.loss)
        count += sum(_given(p.weights, p.biases) for p in claim.gradients or () if p is not None)
        if isinstance(claim, IterationClaim) and claim.network is not None:
            count += sum(_given(p.weights, p.biases) for p in claim.network.layers if p is not None)
    return count


def _given(*values: object) -> int:
    return sum(value is not None for value in values)


def to_claims(req: CheckRequest) -> list[StepClaims]:
    """One StepClaims per claimed iteration that claims any number, in iteration order, each with its path in ``claimed``."""
    steps = [_step_claims(claim, iteration, path) for path, iteration, claim in sorted(req.steps, key=lambda step: step[1])]
    return [step for step in steps if _any_claimed(step)]


def _step_claims(claim: StepClaim, iteration: int, path: Path) -> StepClaims:
    per_layer: dict[str, dict[int, Claimed]] = {"pre_activation": {}, "activation": {}, "delta": {}}
    for k, layer in enumerate(claim.layers or ()):
        if layer is not None:
            for name, found in per_layer.items():
                claimed = _claimed(getattr(layer, name))
                if claimed is not None:
                    found[k] = claimed
    weight_gradients, bias_gradients = _parameters(claim.gradients)
    network = claim.network if isinstance(claim, IterationClaim) else None
    weights_after, biases_after = _parameters(network.layers if network is not None else None)
    return StepClaims(
        iteration=iteration,
        path=path,
        pre_activation=per_layer["pre_activation"],
        activation=per_layer["activation"],
        output=_claimed(claim.output),
        loss=_claimed(claim.loss),
        delta=per_layer["delta"],
        weight_gradients=weight_gradients,
        bias_gradients=bias_gradients,
        weights_after=weights_after,
        biases_after=biases_after,
    )


def _parameters(entries: Sequence[ParameterClaim | None] | None) -> tuple[dict[int, Claimed], dict[int, Claimed]]:
    weights: dict[int, Claimed] = {}
    biases: dict[int, Claimed] = {}
    for k, entry in enumerate(entries or ()):
        if entry is not None:
            for found, values in ((weights, entry.weights), (biases, entry.biases)):
                claimed = _claimed(values)
                if claimed is not None:
                    found[k] = claimed
    return weights, biases


def _claimed(values: Any) -> Claimed | None:
    """The engine's claimed array, or None when it holds only nulls (nothing is claimed there)."""
    return Claimed.of(values) if _holds_a_number(values) else None


def _holds_a_number(values: Any) -> bool:
    if isinstance(values, list):
        return any(_holds_a_number(v) for v in values)
    return values is not None


def _any_claimed(step: StepClaims) -> bool:
    maps = (
        step.pre_activation,
        step.activation,
        step.delta,
        step.weight_gradients,
        step.bias_gradients,
        step.weights_after,
        step.biases_after,
    )
    return step.output is not None or step.loss is not None or any(maps)


# -- the answer ------------------------------------------------------------------------------


def check_payload(req: CheckRequest, result: CheckResult) -> CheckPayload:
    """``result`` as the CheckResponse payload, scored with ``req``'s points."""
    quantities: list[QuantityPayload] = []
    for q in result.quantities:
        worth = float(getattr(req.points, q.kind))
        earned = q.correct or (req.carry_forward and not q.wrong)
        quantities.append(
            {
                "path": _path(q.path),
                "kind": q.kind,
                "iteration": int(q.iteration),
                "layer": None if q.layer is None else int(q.layer),
                "part": q.part,
                "correct": bool(q.correct),
                "consistent": bool(q.consistent),
                "points": worth if earned else 0.0,
                "max_points": worth,
                "worst": _element(q.worst),
                "worst_given_claims": _element(q.worst_given_claims),
                "mistakes": [int(i) for i in q.mistakes],
                "wrong_at": None if q.wrong_at is None else [int(i) for i in q.wrong_at],
            }
        )
    diagnoses: list[DiagnosisPayload] = [
        {"name": d.name, "description": d.description, "detail": _jsonable(dict(d.detail)), "explains": [_path(p) for p in d.explains]}
        for d in result.diagnoses
    ]
    return {
        "first_wrong": None if result.first_wrong is None else _path(result.first_wrong),
        "score": math.fsum(q["points"] for q in quantities),
        "max_score": math.fsum(q["max_points"] for q in quantities),
        "diagnoses": diagnoses,
        "search": _search(result),
        "quantities": quantities,
    }


def _search(result: CheckResult) -> SearchPayload:
    tried, total = int(result.variants_tried), int(result.variants_total)
    notes = [note for note in result.notes if not note.startswith("the search stopped")]
    if not result.complete:
        notes.append(
            f"the search for known mistakes stopped after {tried} of {total} variants: it gets the work that "
            "BACKPROP_MAX_WORK leaves after the check itself, so a mistake among those not tried is not diagnosed"
        )
    message = "; ".join(notes) if notes else None
    return {"complete": result.complete, "variants_tried": tried, "variants_total": total, "message": message}


def _path(path: Path) -> list[str | int]:
    return [part if isinstance(part, str) else int(part) for part in path]


def _element(e: Element) -> ElementPayload:
    return {
        "index": [int(i) for i in e.index],
        "claimed": float(e.claimed),
        "expected": _finite(e.expected),
        "rel_error": _finite(e.rel_error),
        "ok": bool(e.ok),
    }


def _finite(value: float | None) -> float | None:
    """``value`` as a float, or None when it is not finite (the answer holds no NaN or Infinity)."""
    return None if value is None or not math.isfinite(value) else float(value)


def _jsonable(value: Any) -> Any:
    """A diagnosis' detail as JSON: mappings, sequences, strings, ints and finite floats (None otherwise)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, str | bool) or value is None:
        return value
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return _jsonable(value.tolist())
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, Sequence | set | frozenset):
        return [_jsonable(v) for v in value]
    return str(value)
