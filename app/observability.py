"""Metrics (Prometheus) and structured JSON logs, shared by the HTTP layer and the service.

With several uvicorn workers, ``PROMETHEUS_MULTIPROC_DIR`` makes every process write its
samples there and ``/metrics`` add them up (``backprop-api serve --workers N`` sets it).
"""

from __future__ import annotations

import logging
import os
import time
from contextvars import ContextVar
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

HTTP_REQUESTS = Counter(
    "backprop_http_requests_total", "HTTP requests answered, by method, route template and status.", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "backprop_http_request_duration_seconds",
    "Time from receiving a request to sending its last byte, by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
TRAINING_ITERATIONS = Counter("backprop_training_iterations_total", "Training iterations completed.")
PARAMETERS_PROCESSED = Counter(
    "backprop_parameters_processed_total",
    "Parameters run through a forward/backward pass: parameters x iterations (x 1 for forward, loss, gradients).",
)


def record_work(parameters: int, iterations: int = 1, training: bool = False) -> None:
    PARAMETERS_PROCESSED.inc(parameters * iterations)
    if training:
        TRAINING_ITERATIONS.inc(iterations)


def metrics_payload() -> tuple[bytes, str]:
    """The Prometheus exposition of this process, or of all workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        # prometheus_client leaves MultiProcessCollector.__init__ unannotated (it is typed otherwise).
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, and any ``extra`` fields."""

    STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message", "request_id"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stamp = (-1, "")

    def _time(self, created: float, msecs: float) -> str:
        # Formatting the date costs more than the rest of an access line; it changes once a second.
        # One tuple, read and replaced whole, so threads formatting at once never mix two seconds.
        second, stamp = self._stamp
        if int(created) != second:
            second = int(created)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._stamp = (second, stamp)
        return f"{stamp}.{int(msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created, record.msecs),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        standard = self.STANDARD
        for key, value in record.__dict__.items():
            if key not in standard:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # orjson: several times faster than json.dumps on the per-request access line.
        return orjson.dumps(entry, default=str).decode()


def lean_log_records() -> None:
    """Skip what every log record would otherwise look up and our JSON lines never print
    (caller's file and line, thread, process, task): the logging HOWTO's "Optimization" knobs,
    about a third of the cost of an access line."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.logAsyncioTasks = False  # type: ignore[attr-defined]


LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": JsonFormatter}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
    "loggers": {
        "backprop": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        "uvicorn": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        # Our own access log carries the request id and route; uvicorn's is switched off.
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}
