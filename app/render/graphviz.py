"""DOT text to SVG by Graphviz's ``dot`` (Debian's ``graphviz`` package), as a bounded subprocess.

A computation graph is laid out by a real layout engine rather than by hand. The binary is
optional: without it ``render_svg`` raises :class:`GraphvizMissing` (the service answers that
clearly, and the graph's JSON and DOT work all the same). A run is bounded in time (``timeout``,
then it is killed) and in output (``max_bytes``, then it is killed), so no input makes it hang or
fill memory; and it is killed as soon as ``should_stop`` says so (the request's client has gone).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO

from app.nn.errors import Stopped

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "GraphvizError",
    "GraphvizFailed",
    "GraphvizMissing",
    "GraphvizOutputTooLarge",
    "GraphvizTimeout",
    "dot_binary",
    "render_svg",
]

DEFAULT_TIMEOUT = 10.0  # seconds
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
_STDERR_KEPT = 4096
_CHUNK = 65536
# How often a run asks should_stop.
_POLL_SECONDS = 0.05


class GraphvizError(RuntimeError):
    """Graphviz could not draw the picture."""


class GraphvizMissing(GraphvizError):
    """Graphviz's ``dot`` is not installed (on Debian: ``apt-get install graphviz``)."""

    def __init__(self) -> None:
        super().__init__("Graphviz's dot program is not installed on the server, so it cannot draw SVG (JSON and DOT still work)")


class GraphvizFailed(GraphvizError):
    """``dot`` exited with an error; ``stderr`` is what it said (its first few KiB)."""

    def __init__(self, message: str, stderr: str = "") -> None:
        self.stderr = stderr
        super().__init__(message + (f": {stderr.strip()}" if stderr.strip() else ""))


class GraphvizTimeout(GraphvizFailed):
    """``dot`` ran longer than the timeout and was stopped."""


class GraphvizOutputTooLarge(GraphvizFailed):
    """``dot``'s SVG grew past the size cap and it was stopped."""


def dot_binary() -> str | None:
    """The path of Graphviz's ``dot``, or None when it is not installed."""
    return shutil.which("dot")


def render_svg(
    dot: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    binary: str | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> str:
    """The SVG ``dot -Tsvg`` draws from the DOT text ``dot``.

    ``binary``: the program to run (default: ``dot`` on the PATH). Raises GraphvizMissing when there
    is none, GraphvizTimeout after ``timeout`` seconds, GraphvizOutputTooLarge past ``max_bytes`` of
    SVG, GraphvizFailed when it exits with an error, and Stopped (``dot`` killed) as soon as
    ``should_stop()`` is true, asked every few hundredths of a second.
    """
    program = binary or dot_binary()
    if program is None:
        raise GraphvizMissing()
    try:
        proc = subprocess.Popen([program, "-Tsvg"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError as e:
        raise GraphvizMissing() from e
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    out, err = bytearray(), bytearray()
    too_large = threading.Event()

    def feed(stream: IO[bytes]) -> None:
        try:
            stream.write(dot.encode("utf-8"))
        except (BrokenPipeError, OSError):
            pass  # dot stopped reading (it failed or was killed): its exit status says why
        finally:
            try:
                stream.close()
            except OSError:
                pass

    def drain(stream: IO[bytes]) -> None:
        while chunk := os.read(stream.fileno(), _CHUNK):
            if len(out) + len(chunk) > max_bytes:
                too_large.set()
                proc.kill()
                break
            out.extend(chunk)

    def keep_stderr(stream: IO[bytes]) -> None:
        while chunk := os.read(stream.fileno(), _CHUNK):
            err.extend(chunk[: max(0, _STDERR_KEPT - len(err))])

    threads = [
        threading.Thread(target=feed, args=(proc.stdin,), daemon=True),
        threading.Thread(target=drain, args=(proc.stdout,), daemon=True),
        threading.Thread(target=keep_stderr, args=(proc.stderr,), daemon=True),
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                proc.wait(timeout=max(0.0, min(_POLL_SECONDS, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                stop = should_stop is not None and should_stop()
                if stop or time.monotonic() >= deadline:
                    proc.kill()
                    proc.wait()
                    if stop:
                        raise Stopped from None
                    raise GraphvizTimeout(f"Graphviz took longer than {timeout:g} s to draw the graph") from None
    finally:
        for t in threads:
            t.join(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            stream.close()
    if too_large.is_set():
        raise GraphvizOutputTooLarge(f"Graphviz's SVG is larger than {max_bytes} bytes")
    stderr = err.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise GraphvizFailed(f"Graphviz's dot exited with status {proc.returncode}", stderr)
    return out.decode("utf-8")
