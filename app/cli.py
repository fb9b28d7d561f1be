"""The ``backprop-api`` command: ``backprop-api serve`` runs the API with uvicorn."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from app.config import get_settings


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="backprop-api", description="Backpropagation over HTTP.")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="serve the API (Swagger UI at /docs)")
    serve.add_argument("--host", default=settings.host, help="default: BACKPROP_HOST or %(default)s")
    serve.add_argument("--port", type=int, default=settings.port, help="default: BACKPROP_PORT or %(default)s")
    serve.add_argument("--workers", type=int, default=settings.workers, help="default: BACKPROP_WORKERS or %(default)s")
    args = parser.parse_args(argv)
    if args.command != "serve":
        parser.print_help()
        return 2
    # Fixed before numpy loads (in this process and in every worker it spawns).
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(settings.blas_threads))
    import uvicorn

    from app.observability import LOGGING_CONFIG

    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its metrics here and /metrics adds them up across workers.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="backprop-metrics-")
    uvicorn.run(
        "app.main:app", host=args.host, port=args.port, workers=args.workers, log_config=LOGGING_CONFIG, access_log=False
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
