"""The ``backprop-api`` command.

    backprop-api serve                         run the API (Swagger UI at /docs)
    backprop-api example seed > seed.json      a ready-to-post /v1/train body
    backprop-api example seed --binary > seed.safetensors
                                               the same body as safetensors (arrays as raw bytes)
    backprop-api train seed.json               train, with a progress bar and a table
    backprop-api gradients seed.json --json    dLoss/dparameter, as JSON for scripts
    backprop-api check answers.json            a learner's numbers checked (exit 1 when one is wrong)
    backprop-api graph seed.json --format svg  the computation graph, scalar by scalar (json, dot or svg)
    backprop-api gradients seed.json --encoding binary
                                               the same, the arrays sent and answered as raw bytes (safetensors)
    backprop-api train net.safetensors --out trained.safetensors
                                               train a binary body; the binary answer saved (torch loads it)

``train``, ``gradients``, ``check``, ``graph`` and ``example`` talk to a running service (``--url``, default
``BACKPROP_URL`` or http://127.0.0.1:8000) or, with ``--local``, to the engine in this
process with no server. ``FILE`` may be ``-`` for standard input.

``FILE`` is a JSON body, or a safetensors file (a binary body: each array a tensor named by its path in
the JSON body, ``inputs``, ``network.layers.0.weights``, or a network's state_dict key, ``0.weight``; the
other fields as JSON in its ``__metadata__["request"]``, e.g. written by ``safetensors.torch.save_file(
tensors, path, metadata={"request": json.dumps(fields)})``), which is sent as it is. ``--encoding binary``
sends a JSON FILE's arrays and takes the answer as safetensors (the output is the same, but for ``dtype`` float32,
whose numbers it prints as the float64 each exactly is, not float32's shortest form; ``train``'s progress
comes as JSON lines either way). ``gradients`` and ``train`` ``--out FILE.safetensors`` write the binary
answer as it is (a trained network sent as a state_dict comes back under its own keys, which
``model.load_state_dict(safetensors.torch.load_file(path))`` takes when the answer holds no other array);
``train`` then reports no progress. With ``--local``, ``--out`` writes what the service would answer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from app.config import get_settings


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="backprop-api", description="Backpropagation over HTTP.")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="serve the API (Swagger UI at /docs)")
    serve.add_argument("--host", default=settings.host, help="default: BACKPROP_HOST or %(default)s")
    serve.add_argument("--port", type=int, default=settings.port, help="default: BACKPROP_PORT or %(default)s")
    serve.add_argument("--workers", type=int, default=settings.workers, help="default: BACKPROP_WORKERS or %(default)s")
    for name, help_text in (
        ("train", "train the network in FILE (a /v1/train body)"),
        ("gradients", "backprop on FILE (a /v1/gradients body)"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("file", metavar="FILE", help=FILE_HELP)
        _client_options(cmd)
        cmd.add_argument("--json", action="store_true", help="print JSON for scripts instead of tables")
        cmd.add_argument(
            "--out",
            metavar="FILE.safetensors",
            help="also write the answer, as safetensors, to this file (the service's binary answer as it is)",
        )
        if name == "train":
            cmd.add_argument("--progress", action="store_true", help="show the progress bar even when stderr is not a terminal")
    check = sub.add_parser(
        "check",
        help="check a learner's numbers in FILE (a /v1/check body); exit 0 when none is wrong, 1 when one is, 2 on errors",
    )
    check.add_argument("file", metavar="FILE", help=FILE_HELP)
    _client_options(check)
    check.add_argument("--json", action="store_true", help="print the answer as JSON instead of a summary")
    graph = sub.add_parser("graph", help="the computation graph of FILE (a /v1/graph body): every scalar, its value and grad")
    graph.add_argument("file", metavar="FILE", help=FILE_HELP)
    _client_options(graph)
    graph.add_argument(
        "--format",
        choices=("json", "dot", "svg"),
        default="json",
        help="json (the default): the graph as data; dot: Graphviz DOT text; svg: the picture, laid out by Graphviz",
    )
    example = sub.add_parser("example", help="print a named example's body for an endpoint (by default /v1/train)")
    example.add_argument("name", help="seed, xor, ...")
    example.add_argument(
        "--for",
        dest="endpoint",
        default="train",
        # The keys of app.examples.ENDPOINTS (not imported here: numpy must load after serve sets its threads).
        choices=("forward", "loss", "gradients", "gradcheck", "explain", "train", "train_plot", "diagram", "check", "graph"),
        help="the endpoint to post the body to (default %(default)s)",
    )
    _client_options(example, encoding=False)
    example.add_argument(
        "--binary",
        action="store_true",
        help="write the body as safetensors (its arrays as tensors), e.g. > seed.safetensors, for a binary request",
    )
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args, settings.blas_threads)
    if args.command is None:
        parser.print_help()
        return 2
    from app.client import BackpropError, ServiceError, ServiceUnavailable

    # check's exit status 1 says a claimed number is wrong, so its errors are 2 (as diff's and grep's are).
    failed = 2 if args.command == "check" else 1
    try:
        commands = {"train": _train, "gradients": _gradients, "check": _check, "graph": _graph, "example": _example}
        return commands[args.command](args)
    except ServiceUnavailable as exc:
        if exc.unreachable:
            print(
                f"backprop-api: cannot reach the service at {args.url} ({exc.failure}).\n"
                "Start it with `backprop-api serve` (in another terminal), point --url at a running one, "
                "or compute in this process with --local.",
                file=sys.stderr,
            )
        else:
            print(f"backprop-api: {exc}", file=sys.stderr)
        return failed
    except ServiceError as exc:
        # In-process there is no HTTP: say what is wrong without a status line.
        print(f"backprop-api: {exc.explanation() if args.local else exc}", file=sys.stderr)
        return failed
    except BackpropError as exc:
        print(f"backprop-api: {exc}", file=sys.stderr)
        return failed
    except (OSError, ValueError) as exc:
        print(f"backprop-api: {exc}", file=sys.stderr)
        return failed


FILE_HELP = "a JSON body or a safetensors file (a binary body), or - for standard input"


def _client_options(cmd: argparse.ArgumentParser, encoding: bool = True) -> None:
    where = cmd.add_mutually_exclusive_group()
    where.add_argument("--url", default=os.environ.get("BACKPROP_URL", "http://127.0.0.1:8000"), help="the service (default %(default)s)")
    where.add_argument("--local", action="store_true", help="compute in this process, no server")
    if encoding:
        cmd.add_argument(
            "--encoding",
            choices=("json", "binary"),
            default="json",
            help="how the arrays travel: json (the default), or binary (safetensors, raw float64 bytes); with --local, nothing travels",
        )


def _serve(args: argparse.Namespace, blas_threads: int) -> int:
    # Fixed before numpy loads (in this process and in every worker it spawns).
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(blas_threads))
    import uvicorn

    from app.observability import LOGGING_CONFIG
    from app.server import ensure_fd_room, uvicorn_options

    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its metrics here and /metrics adds them up across workers.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="backprop-metrics-")
    settings = get_settings()
    # Header/body timeouts, header size and connection caps (app/server.py); the workers
    # inherit the raised file descriptor limit.
    ensure_fd_room(settings.max_connections)
    uvicorn.run(
        "app.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=LOGGING_CONFIG,
        access_log=False,
        **uvicorn_options(settings),
    )
    return 0


def _read(path: str) -> dict[str, Any] | bytes:
    """FILE's body: a JSON object, or the bytes of a safetensors file (named ``.safetensors``, or not JSON
    but a valid safetensors file)."""
    from app.client import decode_request

    raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    if path.endswith(".safetensors"):
        try:
            decode_request(raw)  # a file that is not safetensors is said here, not by the service
        except ValueError as exc:
            hint = " (it is JSON: name it .json)" if raw.lstrip()[:1] == b"{" else ""
            raise ValueError(f"{path} is not a binary body{hint}: {exc}") from None
        return raw
    try:
        body = json.loads(raw)
    except ValueError as not_json:
        try:
            decode_request(raw)
        except ValueError as not_binary:
            # Said by what the bytes look like: JSON's reason for what starts as JSON, else the file's.
            reason = f"not JSON: {not_json}" if raw.lstrip()[:1] in (b"{", b"[") else f"not a safetensors file: {not_binary}"
            raise ValueError(f"{path} is neither a JSON body nor a safetensors file ({reason})") from None
        return raw
    if not isinstance(body, dict):
        raise ValueError(f"{path} must hold a JSON object (a request body)")
    return body


def _fields(body: dict[str, Any] | bytes) -> dict[str, Any]:
    """The request's fields (a safetensors body's arrays as numpy arrays)."""
    from app.client import decode_request

    return decode_request(body) if isinstance(body, bytes) else body


class _Local:
    """The client's methods, computed in this process by the service (no HTTP)."""

    def __init__(self) -> None:
        self.settings = get_settings()

    def _validated(self, model: Any, body: dict[str, Any]) -> Any:
        from pydantic import ValidationError

        from app.client import ValidationFailed, jsonable, verbatim
        from app.schemas.error_entries import body_errors, error_entries
        from app.schemas.responses import ErrorEntry

        try:
            return model.model_validate_json(json.dumps(jsonable(verbatim(body))))
        except ValidationError as exc:
            # The server's own error entries, so --local says exactly what the service says.
            said = body_errors(exc.errors(include_url=False), model)
            entries = error_entries(said.shown, said.more, said.at_least)
            detail = [ErrorEntry.model_validate(e) for e in entries]
            raise ValidationFailed(422, detail, str(exc)) from None

    def send(
        self,
        endpoint: str,
        body: dict[str, Any] | bytes,
        *,
        stream: bool = False,
        format: str = "json",
        encoding: str | None = None,
        raw: bool = False,
    ) -> Any:
        """As the client's ``send``, for the endpoints the CLI uses (``gradients``, ``check``, ``graph``, ``train``
        streamed; ``raw``: ``gradients`` and ``train`` answered as the service's safetensors bytes). Nothing
        travels, so ``encoding`` changes nothing."""
        from app.client import jsonable
        from app.schemas.requests import CheckRequest, GraphRequest, LossRequest, TrainRequest
        from app.schemas.responses import CheckResponse, GradientsResponse, GraphResponse
        from app.service.check import run_check
        from app.service.gradients import run_gradients
        from app.service.graph import run_graph, run_graph_dot, run_graph_svg
        from app.service.train import run_train, stream_train

        body = _fields(body)
        if raw:
            assert endpoint in ("gradients", "train"), endpoint
            request: Any = TrainRequest if endpoint == "train" else LossRequest
            return self._binary_answer(request, run_train if endpoint == "train" else run_gradients, body)
        if endpoint == "train" and stream:
            req = self._validated(TrainRequest, body)
            return self._items(self._computed(stream_train, req))
        if endpoint == "graph":
            graph = self._validated(GraphRequest, body)
            if format != "json":
                return self._computed(run_graph_svg if format == "svg" else run_graph_dot, graph)
            import orjson

            return GraphResponse.model_validate_json(orjson.dumps(self._computed(run_graph, graph)))
        if endpoint == "check":
            import orjson

            checked = self._validated(CheckRequest, body)
            # As the service encodes it: its nulls are answers (jsonable would drop them).
            answer = orjson.dumps(self._computed(run_check, checked), option=orjson.OPT_SERIALIZE_NUMPY)
            return CheckResponse.model_validate_json(answer)
        assert endpoint == "gradients", endpoint
        req = self._validated(LossRequest, body)
        return GradientsResponse.model_validate(jsonable(self._computed(run_gradients, req)))

    def _binary_answer(self, model: Any, fn: Any, body: dict[str, Any]) -> bytes:
        """``fn``'s answer as the service sends it in safetensors (held to the same limits)."""
        from app.api.compute import binary_answer_settings
        from app.api.response_bodies import SafetensorsBody

        req = self._validated(model, body)
        settings = self.settings
        try:
            self.settings = binary_answer_settings(settings)
            payload = self._computed(fn, req)
        finally:
            self.settings = settings
        return bytes(SafetensorsBody(payload).body)

    def _items(self, batches: Iterator[list[Any]]) -> Iterator[Any]:
        from app.client import jsonable, stream_item

        for batch in batches:
            for item in batch:
                yield stream_item(json.dumps(jsonable(item)))

    def _computed(self, fn: Any, req: Any) -> Any:
        """``fn(req, settings)``, its limit and overflow errors as the service answers them."""
        from app.client import LimitExceeded, ServiceError, ValidationFailed
        from app.nn.errors import NonFiniteError
        from app.render.graphviz import GraphvizMissing
        from app.schemas.error_entries import graphviz_missing_entry, limit_entry, non_finite_entry
        from app.schemas.responses import ErrorEntry
        from app.service.limits import OverLimit

        try:
            return fn(req, self.settings)
        except GraphvizMissing as exc:
            entry = ErrorEntry.model_validate(graphviz_missing_entry(str(exc)))
            raise ServiceError(501, [entry], entry.msg) from None
        except OverLimit as exc:
            entry = ErrorEntry.model_validate(limit_entry(exc.loc, exc.message))
            raise LimitExceeded(413, [entry], exc.message) from None
        except NonFiniteError as exc:
            entry = ErrorEntry.model_validate(non_finite_entry(exc, getattr(req, "network", None), getattr(req, "dtype", "float64")))
            raise ValidationFailed(422, [entry], entry.msg) from None

    def example(self, name: str, endpoint: str = "train") -> dict[str, Any]:
        from app.client import NotFound
        from app.examples import ExampleNotFound, example_body, find_example

        try:
            find_example(name, endpoint)
        except ExampleNotFound as missing:
            raise NotFound(404, [], missing.message) from None
        return example_body(name, endpoint)


def _connect(args: argparse.Namespace) -> Any:
    if args.local:
        return _Local()
    from app.client import BackpropClient

    return BackpropClient(args.url, encoding=getattr(args, "encoding", "json"))


def _answer(args: argparse.Namespace, endpoint: str, body: dict[str, Any] | bytes, model: Any) -> Any:
    """``endpoint``'s answer to ``body`` as ``model`` with lists (as JSON answers it); with ``--out``, the
    binary answer is written to that file first."""
    from app.client import as_lists, decode_answer

    connection = _connect(args)
    if args.out:
        raw = connection.send(endpoint, body, encoding="binary", raw=True)
        Path(args.out).write_bytes(raw)
        return as_lists(decode_answer(raw, model))
    return as_lists(connection.send(endpoint, body))


def _example(args: argparse.Namespace) -> int:
    body = _connect(args).example(args.name, endpoint=args.endpoint)
    if args.binary:
        from app.client import REQUEST_MODELS, encode_request

        if sys.stdout.isatty():
            raise ValueError("--binary writes raw bytes: send them to a file (> seed.safetensors) or a pipe, not the terminal")
        sys.stdout.buffer.write(encode_request(body, REQUEST_MODELS[args.endpoint]))
        return 0
    print(json.dumps(body, indent=2))
    return 0


def _gradients(args: argparse.Namespace) -> int:
    body = _read(args.file)
    from app.schemas.requests import LossRequest
    from app.schemas.responses import GradientsResponse

    # A /v1/train body (the examples' default) is taken too: its training fields are left out.
    fields = _fields(body)
    if set(fields) - set(LossRequest.model_fields):
        kept = {k: fields[k] for k in LossRequest.model_fields if k in fields}
        if isinstance(body, bytes):
            from app.client import encode_request

            body = encode_request(kept, LossRequest)
        else:
            body = kept
    result = _answer(args, "gradients", body, GradientsResponse)
    if args.json:
        print(result.model_dump_json(indent=2))
        return 0
    print(f"loss {result.loss!r}")
    for k, g in enumerate(result.gradients):
        print(f"\nlayer {k}: dL/dW (rows: units, columns: inputs)")
        _table(sys.stdout, [f"{j}" for j in range(len(g.weights))], [[repr(v) for v in row] for row in g.weights])
        print(f"layer {k}: dL/db")
        _table(sys.stdout, ["b"], [[repr(v) for v in g.biases]])
    return 0


def _graph(args: argparse.Namespace) -> int:
    from app.client import as_lists

    answer = _connect(args).send("graph", _read(args.file), format=args.format)
    if args.format == "json":
        print(as_lists(answer).model_dump_json(indent=2))
    else:
        sys.stdout.write(answer if answer.endswith("\n") else answer + "\n")
    return 0


def _check(args: argparse.Namespace) -> int:
    from app.client import as_lists

    body = _read(args.file)
    result = as_lists(_connect(args).send("check", body))
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        _check_summary(sys.stdout, result, _fields(body).get("claimed"))
    return 0 if result.first_wrong is None else 1


def _check_summary(out: TextIO, result: Any, claimed: Any) -> None:
    """The first wrong number, the score, each claimed quantity's verdict and worst element, the diagnoses."""
    from app.schemas.base import dotted

    if result.first_wrong is None:
        if all(q.correct for q in result.quantities):
            out.write("every claimed number is correct\n")
        else:
            out.write("no claimed number is wrong: those not correct follow from the learner's own earlier numbers\n")
    else:
        value = _at(claimed, result.first_wrong)
        out.write(f"first wrong: {dotted(result.first_wrong)}" + (f" (claimed {value!r})" if value is not None else "") + "\n")
    out.write(f"score {result.score:g} of {result.max_score:g}\n\n")
    rows = []
    for q in result.quantities:
        w = q.worst
        index = "".join(f"[{i}]" for i in w.index)
        error = "" if w.rel_error is None else f" (relative error {w.rel_error:.2g})"
        expected = "not finite" if w.expected is None else repr(w.expected)
        rows.append(
            [
                dotted(q.path),
                "yes" if q.correct else "no",
                "yes" if q.consistent else "no",
                f"{q.points:g}/{q.max_points:g}",
                f"{index or 'value'}: claimed {w.claimed!r}, expected {expected}{error}",
            ]
        )
    if rows:
        _table(out, ["quantity", "correct", "consistent", "points", "worst element"], rows, header=True, left=frozenset({0, 4}))
    search = result.search
    searched = f"{search.variants_tried} of {search.variants_total} variants tried"
    if result.diagnoses:
        out.write(f"\ndiagnoses ({searched}):\n")
        for d in result.diagnoses:
            out.write(f"- {d.name}: {d.description}\n  explains {', '.join(dotted(p) for p in d.explains)}\n")
    elif result.first_wrong is not None:
        out.write(f"\nno known mistake reproduces the wrong numbers ({searched})\n")
    if search.message:
        out.write(f"note: {search.message}\n")


def _at(claimed: Any, path: list[str | int]) -> Any:
    """The claimed value at ``path`` in the body's ``claimed`` (None when the body does not have it)."""
    for part in path:
        try:
            claimed = claimed[part]
        except (KeyError, IndexError, TypeError):
            return None
    # A tensor's element is a numpy scalar: shown as the number it is, as JSON's.
    item = getattr(claimed, "item", None)
    return item() if item is not None and not isinstance(claimed, (list, dict)) and getattr(claimed, "ndim", 1) == 0 else claimed


def _train(args: argparse.Namespace) -> int:
    from app.nn.training import recorded_count
    from app.schemas.responses import TrainResponse, TrainSummary

    body = _read(args.file)
    entries: list[Any] = []
    summary: Any = None
    if args.out:
        # The whole answer at once (safetensors), so no progress.
        summary = _answer(args, "train", body, TrainResponse)
        entries = summary.trace
    else:
        fields = _fields(body)
        expected = recorded_count(int(fields.get("iterations") or 1), int(fields.get("record_every") or 1))
        show_bar = args.progress or sys.stderr.isatty()
        for item in _connect(args).send("train", body, stream=True):
            if isinstance(item, TrainSummary):
                summary = item
            else:
                entries.append(item)
                if show_bar:
                    _bar(sys.stderr, len(entries), expected, item.iteration, item.loss)
        if show_bar:
            sys.stderr.write("\n")
    assert summary is not None
    if args.json:
        out = summary.model_dump(mode="json", exclude_none=True, exclude={"trace"})
        out["trace"] = [e.model_dump(mode="json", exclude_none=True) for e in entries]
        print(json.dumps(out, indent=2))
        return 0
    rows = [[str(e.iteration), repr(e.loss), json.dumps(e.output) if e.output is not None else ""] for e in entries]
    _table(sys.stdout, ["iteration", "loss", "output"], rows, header=True)
    ended = f"diverged at iteration {summary.diverged_at}" if summary.status == "diverged" else "completed"
    print(f"\n{ended}; final loss {summary.final_loss!r}")
    for k, layer in enumerate(summary.network.layers):
        print(f"layer {k} ({layer.activation}): weights {json.dumps(layer.weights)} biases {json.dumps(layer.biases)}")
    return 0


def _bar(out: TextIO, done: int, total: int, iteration: int, loss: float) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {100 * done / max(total, 1):5.1f}%  iteration {iteration}  loss {loss:.6g}")
    out.flush()


def _table(out: TextIO, first: list[str], rows: list[list[str]], header: bool = False, left: frozenset[int] = frozenset()) -> None:
    """Columns padded to their widest cell (on the left, but for the columns in ``left``); with ``header``,
    ``first`` names the columns."""
    if header:
        lines = [first, *rows]
    else:
        lines = [[name, *row] for name, row in zip(first, rows)]
    widths = [max(len(line[c]) for line in lines if c < len(line)) for c in range(max(map(len, lines)))]
    for n, line in enumerate(lines):
        text = "  ".join(cell.ljust(widths[c]) if c in left else cell.rjust(widths[c]) for c, cell in enumerate(line))
        out.write((text.rstrip() if left else text) + "\n")
        if header and n == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")


if __name__ == "__main__":
    sys.exit(main())
