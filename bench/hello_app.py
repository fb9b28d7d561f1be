"""The HTTP floor: a pydantic-validated ``async def`` POST that does no work, for bench/http.py."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel


class Layer(BaseModel):
    weights: list[list[float]]
    biases: list[float] | None = None
    activation: str = "identity"


class Network(BaseModel):
    layers: list[Layer]


class Body(BaseModel):
    network: Network
    inputs: list[list[float]]
    targets: list[list[float]]
    loss: str
    reduction: str = "mean"


app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/hello")
async def hello(body: Body) -> dict[str, bool]:
    return {"ok": True}
