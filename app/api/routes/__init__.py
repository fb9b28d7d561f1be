"""One router per resource.

``COMPUTE`` are the routers whose POSTs compute: their bodies are size-limited, admitted and
dispatched by app.api.dispatch, and their work is metered. ``OTHERS`` serve examples, health,
metrics and pages. app.main includes both; a new resource is added to one of them here.
"""

from fastapi import APIRouter

from app.api.routes import (
    check,
    diagram,
    docs,
    examples,
    explain,
    forward,
    gradcheck,
    gradients,
    graph,
    health,
    loss,
    metrics,
    playground,
    root,
    train,
)

COMPUTE: tuple[APIRouter, ...] = tuple(m.router for m in (forward, loss, gradients, gradcheck, explain, train, diagram, check, graph))
OTHERS: tuple[APIRouter, ...] = tuple(m.router for m in (examples, health, metrics, playground, docs, root))
