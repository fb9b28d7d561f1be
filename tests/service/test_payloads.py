"""Every use case's payload is its response model: key for key in its type, and in fact on random bodies.

The HTTP layer serialises payloads as they are (a pydantic model per number would cost more than
the backprop on large networks), so ``response_model`` documents but never checks them: these
tests do, fast, without HTTP. The slow response fuzzer does it again over HTTP with extreme numbers.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from pydantic import BaseModel

from app.config import Settings
from app.main import create_app
from app.schemas import responses
from app.schemas.network import LayerSpec, NetworkSpec
from app.schemas.requests import CheckRequest, ExplainRequest, ForwardRequest, GradcheckRequest, GraphRequest, LossRequest, TrainRequest
from app.service import payloads
from app.service.check import run_check
from app.service.explain import run_explain
from app.service.forward import run_forward
from app.service.gradcheck import run_gradcheck
from app.service.gradients import run_gradients
from app.service.graph import run_graph
from app.service.loss import run_loss
from app.service.train import run_train, stream_train
from tests.support import random_bodies

# Each payload type and the response model it stands for.
MIRRORS: list[tuple[type, type[BaseModel]]] = [
    (payloads.LayerSpecPayload, LayerSpec),
    (payloads.NetworkPayload, NetworkSpec),
    (payloads.LayerGradientPayload, responses.LayerGradient),
    (payloads.LayerValuesPayload, responses.LayerValues),
    (payloads.ForwardPayload, responses.ForwardResponse),
    (payloads.LossPayload, responses.LossResponse),
    (payloads.GradientsPayload, responses.GradientsResponse),
    (payloads.TraceEntryPayload, responses.TraceEntry),
    (payloads.TrainSummaryPayload, responses.TrainSummary),
    (payloads.TrainPayload, responses.TrainResponse),
    (payloads.ParameterRefPayload, responses.ParameterRef),
    (payloads.WorstParameterPayload, responses.WorstParameter),
    (payloads.GradcheckPayload, responses.GradcheckResponse),
    (payloads.TermPayload, responses.TermOut),
    (payloads.StepPayload, responses.StepOut),
    (payloads.SamplePayload, responses.SampleOut),
    (payloads.ReductionPayload, responses.ReductionOut),
    (payloads.ExplainPayload, responses.ExplainResponse),
    (payloads.ElementPayload, responses.ElementOut),
    (payloads.QuantityPayload, responses.QuantityOut),
    (payloads.DiagnosisPayload, responses.DiagnosisOut),
    (payloads.SearchPayload, responses.SearchOut),
    (payloads.CheckPayload, responses.CheckResponse),
    (payloads.GraphNodePayload, responses.GraphNode),
    (payloads.GraphEdgePayload, responses.GraphEdge),
    (payloads.GraphPayload, responses.GraphResponse),
]

# Each JSON use case: its body generator, request model, response model.
USE_CASES: dict[str, tuple[Callable[..., Any], Callable[[np.random.Generator], dict[str, Any]], type[BaseModel], type[BaseModel]]] = {
    "forward": (run_forward, random_bodies.network_body, ForwardRequest, responses.ForwardResponse),
    "loss": (run_loss, random_bodies.loss_body, LossRequest, responses.LossResponse),
    "gradients": (run_gradients, random_bodies.loss_body, LossRequest, responses.GradientsResponse),
    "gradcheck": (run_gradcheck, random_bodies.gradcheck_body, GradcheckRequest, responses.GradcheckResponse),
    "explain": (run_explain, random_bodies.explain_body, ExplainRequest, responses.ExplainResponse),
    "train": (run_train, random_bodies.train_body, TrainRequest, responses.TrainResponse),
    "check": (run_check, random_bodies.check_body, CheckRequest, responses.CheckResponse),
    "graph": (run_graph, random_bodies.graph_body, GraphRequest, responses.GraphResponse),
}
CASES = 40


@pytest.mark.parametrize(("payload", "model"), MIRRORS, ids=lambda t: t.__name__)
def test_each_payload_type_has_its_models_keys_and_its_required_ones(payload: Any, model: type[BaseModel]) -> None:
    # A field's wire name is its alias when it has one (a graph edge's "from", a Python keyword).
    fields = {field.alias or name: field for name, field in model.model_fields.items()}
    assert list(typing.get_type_hints(payload)) == list(fields), "the same keys, in the same order"
    # A payload may always send what its model lets a client leave out (a layer's biases), never the reverse.
    assert {name for name, field in fields.items() if field.is_required()} <= payload.__required_keys__


def test_every_json_compute_route_is_checked_here() -> None:
    spec = create_app(Settings()).openapi()
    answers = [op["responses"]["200"]["content"] for op in (path.get("post") for path in spec["paths"].values()) if op]
    modelled = {
        c["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        for c in answers
        if "$ref" in c.get("application/json", {}).get("schema", {})
    }
    assert modelled == {model.__name__ for *_, model in USE_CASES.values()}


@pytest.mark.parametrize("use_case", sorted(USE_CASES))
@pytest.mark.parametrize("case", range(CASES))
def test_the_answer_validates_against_its_response_model(use_case: str, case: int) -> None:
    run, make_body, request_model, response_model = USE_CASES[use_case]
    body = make_body(np.random.default_rng((20261130, sorted(USE_CASES).index(use_case), case)))
    answer = orjson.loads(orjson.dumps(run(request_model.model_validate(body), Settings()), option=orjson.OPT_SERIALIZE_NUMPY))
    validated = response_model.model_validate(answer, strict=True)
    assert validated.model_dump(exclude_unset=True) == answer


@pytest.mark.parametrize("case", range(CASES))
def test_each_streamed_line_validates_as_a_trace_entry_then_the_summary(case: int) -> None:
    req = TrainRequest.model_validate(random_bodies.train_body(np.random.default_rng((20261130, 99, case))))
    lines = [
        orjson.loads(orjson.dumps(item, option=orjson.OPT_SERIALIZE_NUMPY)) for batch in stream_train(req, Settings()) for item in batch
    ]
    *entries, summary = lines
    assert [responses.TraceEntry.model_validate(e, strict=True).model_dump(exclude_unset=True) for e in entries] == entries
    assert responses.TrainSummary.model_validate(summary, strict=True).model_dump(exclude_unset=True) == summary
