"""Settings, read from the environment with the ``BACKPROP_`` prefix (e.g. ``BACKPROP_MAX_ITERATIONS``)."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Server options and request limits; every limit's error names the setting that raises it."""

    model_config = SettingsConfigDict(env_prefix="BACKPROP_", frozen=True)

    host: str = Field(default="127.0.0.1", description="Address `backprop-api serve` binds.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `backprop-api serve` binds.")
    workers: int = Field(
        default_factory=lambda: len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
        ge=1,
        description="uvicorn worker processes; default one per core (see bench/README.md).",
    )
    blas_threads: int = Field(
        default=1,
        ge=1,
        description="BLAS threads per worker (OPENBLAS/OMP/MKL_NUM_THREADS unless those are set); 1 measured best (see bench/README.md).",
    )

    inline_work: float = Field(
        default=200_000,
        ge=0,
        description="Requests whose work estimate is at most this run on the event loop; larger ones in a thread.",
    )

    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's native OpenTelemetry spans and metrics, through an OpenTelemetry SDK the "
        "process configures; off by default, as asking whether one is configured costs every request ~4 us.",
    )

    max_inflight_work: float = Field(
        # About a second of the slowest kind of work (tiny networks run ~1.5e9 units a second):
        # computations share one interpreter, so more at once only makes each of them later.
        default=2e9,
        gt=0,
        description="Most estimated work (the unit of max_work) one worker computes at once; beyond it, "
        "503 with Retry-After at once. A request is always admitted by an idle worker.",
    )
    switch_interval_ms: float = Field(
        default=1.0,
        ge=0,
        description="How often (ms) a computing thread hands the interpreter to the event loop "
        "(sys.setswitchinterval; Python's default is 5, 0 keeps it). Shorter keeps small requests and "
        "refusals prompt while computations run.",
    )
    max_inflight_memory: int = Field(
        default=512 * 1024 * 1024,
        ge=1,
        description="Most estimated bytes the computations of one worker hold at once; beyond it, 503 with "
        "Retry-After. Keep workers x this (plus ~100 MB each) within the memory the deployment gives.",
    )

    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1, description="Largest request body, in bytes.")
    max_parameters: int = Field(default=2_000_000, ge=1, description="Most weights and biases in one network.")
    max_binary_body_bytes: int = Field(
        default=128 * 1024 * 1024,
        ge=1,
        description="Largest request body sent as safetensors (application/x-safetensors), in bytes: 8 per float64 "
        "number, where JSON takes 14-30 and many times that while parsed.",
    )
    max_binary_parameters: int = Field(
        default=12_000_000,
        ge=1,
        description="Most weights and biases in one network sent as safetensors (see bench/README.md for its memory).",
    )
    max_binary_header_bytes: int = Field(
        default=64 * 1024,
        ge=64,
        description="Largest JSON header of a safetensors body: the tensors' names, shapes and offsets and the "
        "request's other fields (__metadata__), validated in one pass like a small JSON body.",
    )
    max_layers: int = Field(default=1_000, ge=1, description="Most layers in one network.")
    max_batch: int = Field(default=100_000, ge=1, description="Most input rows in one request.")
    max_iterations: int = Field(default=100_000, ge=1, description="Most iterations of one training.")
    max_work: float = Field(
        default=1e10,
        gt=0,
        description="Most iterations x batch x parameters in one request; a layer's fixed per-iteration "
        "cost counts as at least 10,000 of these units.",
    )
    max_activations: int = Field(
        default=50_000_000, ge=1, description="Most batch x (sum of layer widths) values held by one forward pass."
    )
    max_explain_steps: int = Field(
        default=10_000, ge=1, description="Most steps in one /v1/explain derivation (samples x units it passes through)."
    )
    max_diagram_units: int = Field(default=64, ge=1, description="Most neurons in one column of a /v1/diagram picture.")
    max_diagram_edges: int = Field(default=4096, ge=1, description="Most weights (edges) in one /v1/diagram picture.")
    max_graph_nodes: int = Field(
        default=10_000,
        ge=1,
        description="Most nodes (scalars) in one /v1/graph computation graph, checked before it is built.",
    )
    max_graph_edges: int = Field(
        default=20_000,
        ge=1,
        description="Most edges (local derivatives) in one /v1/graph computation graph, checked before it is built: "
        "a softmax of n classes has n x n of them.",
    )
    max_graph_svg_edges: int = Field(
        default=2_000,
        ge=1,
        description="Most edges in a /v1/graph picture laid out as SVG by Graphviz (its layout time grows with them, "
        "about 1.5 s at 2,000); JSON and DOT take up to max_graph_edges.",
    )
    graph_svg_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds Graphviz may take to lay out one /v1/graph SVG; past it the layout is stopped and the "
        "answer is 413 naming this setting.",
    )
    max_output_values: int = Field(
        default=4_000_000,
        ge=1,
        description="Most numbers in one answer (forward's activations, a trace, gradients, an explanation's "
        "numbers, a plot's points), checked before the work; ~14-30 bytes each as JSON. An answer sent as "
        "safetensors (8 bytes a number) may hold 4 times as many.",
    )

    header_timeout: float = Field(
        default=20.0,
        gt=0,
        description="Seconds a connection may take to send a request's complete headers, counted from its opening "
        "or the previous response; then 408 (nothing if it sent nothing) and closed.",
    )
    body_timeout: float = Field(
        default=20.0,
        gt=0,
        description="Seconds a request body may take after its headers, plus one second per body_min_rate bytes "
        "received; then 408 and closed.",
    )
    body_min_rate: float = Field(
        default=500.0,
        gt=0,
        description="Bytes a second a body keeps coming at without ever being cut by body_timeout.",
    )
    max_header_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest request line plus headers, in bytes; past it 431 and closed."
    )
    max_connections: int = Field(
        default=1000,
        ge=2,
        description="Open connections per worker; a new one past it closes the oldest connection still waiting "
        "for a request's headers, and is answered 503 when every other one has a request in progress.",
    )


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
