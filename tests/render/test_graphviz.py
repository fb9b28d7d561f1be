"""DOT to SVG by Graphviz's dot (app/render/graphviz.py): the seed's picture names every node,
and a missing, failing, slow or verbose dot is a clear error."""

import os
import shutil
import stat
import time
import xml.etree.ElementTree as ET

import pytest

from app.nn.errors import Stopped
from app.render import graphviz
from app.render.graph_dot import graph_dot
from app.render.graphviz import GraphvizFailed, GraphvizMissing, GraphvizOutputTooLarge, GraphvizTimeout, render_svg
from tests.support.seed_network import seed_graph

SVG = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)")


@pytest.mark.slow
@needs_dot
def test_the_seeds_svg_names_every_node():
    g = seed_graph()
    svg = render_svg(graph_dot(g))
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    nodes = [e for e in root.iter(f"{SVG}g") if e.get("class") == "node"]
    assert sorted(e.find(f"{SVG}title").text for e in nodes) == sorted(n.name for n in g.nodes)
    texts = {"".join(t.itertext()).strip() for t in root.iter(f"{SVG}text")}
    for node in g.nodes:
        assert node.label in texts, node.label
    assert {"x1", "x2", "f1", "f2", "z1", "z2", "f", "z_hat", "CE"} <= texts
    edges = [e for e in root.iter(f"{SVG}g") if e.get("class") == "edge"]
    assert len(edges) == len(g.edges)


def test_no_dot_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(graphviz.shutil, "which", lambda name: None)
    assert graphviz.dot_binary() is None
    with pytest.raises(GraphvizMissing, match="not installed"):
        render_svg("digraph { a }")
    with pytest.raises(GraphvizMissing):
        render_svg("digraph { a }", binary="/nonexistent/dot")


def fake_dot(tmp_path, body):
    path = tmp_path / "dot"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.slow
@needs_dot
def test_dots_own_error_is_reported():
    with pytest.raises(GraphvizFailed, match="exited with status 1: .*syntax error"):
        render_svg("digraph { a -> }")


@pytest.mark.slow
def test_a_slow_dot_is_stopped(tmp_path):
    with pytest.raises(GraphvizTimeout, match="longer than 0.3 s"):
        render_svg("digraph { a }", binary=fake_dot(tmp_path, "exec sleep 30"), timeout=0.3)


@pytest.mark.slow
def test_a_dot_that_writes_too_much_is_stopped(tmp_path):
    with pytest.raises(GraphvizOutputTooLarge, match="larger than 100000 bytes"):
        render_svg("digraph { a }", binary=fake_dot(tmp_path, "exec yes"), max_bytes=100_000)


@pytest.mark.slow
def test_a_dot_that_reads_nothing_is_a_failure_not_a_hang(tmp_path):
    big = "digraph {\n" + "".join(f"  n{i} -> n{i + 1};\n" for i in range(200_000)) + "}\n"
    with pytest.raises(GraphvizFailed, match="status 3"):
        render_svg(big, binary=fake_dot(tmp_path, "exit 3"), timeout=10)


def test_a_dot_whose_caller_stops_is_killed_at_once(tmp_path):
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    stop_at = started + 0.2
    binary = fake_dot(tmp_path, f"echo $$ > {pid_file}; exec sleep 30")
    with pytest.raises(Stopped):
        render_svg("digraph { a }", binary=binary, timeout=20, should_stop=lambda: time.monotonic() > stop_at)
    assert time.monotonic() - started < 2
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)  # killed and reaped
