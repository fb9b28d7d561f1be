"""Dependencies point one way: api -> service -> nn; the engine imports only numpy and the standard library."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import app.nn

NN_DIR = Path(app.nn.__file__).parent
FORBIDDEN = (
    "fastapi",
    "pydantic",
    "pydantic_settings",
    "starlette",
    "uvicorn",
    "torch",
    "app.api",
    "app.schemas",
    "app.service",
    "app.config",
    "app.main",
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_engine_imports_only_numpy_the_stdlib_and_itself():
    for path in NN_DIR.glob("*.py"):
        for name in imported_modules(path):
            root = name.split(".")[0]
            assert name.startswith("app.nn") or root == "numpy" or root in sys.stdlib_module_names, f"{path.name} imports {name}"
            assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"


@pytest.mark.slow
def test_importing_the_engine_loads_no_web_framework():
    code = (
        "import sys, app.nn.activations, app.nn.losses, app.nn.network, app.nn.optimizers, app.nn.training;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('fastapi', 'pydantic', 'starlette', 'torch')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_routers_hold_no_maths():
    routes = Path(app.nn.__file__).parent.parent / "api" / "routes"
    for path in routes.glob("*.py"):
        assert not any(name.split(".")[0] == "numpy" or name.startswith("app.nn") for name in imported_modules(path)), path.name


def test_service_does_not_import_the_http_layer():
    modules = sorted((Path(app.nn.__file__).parent.parent / "service").glob("*.py"))
    assert len(modules) > 5, "app/service/ is a package of use cases"
    for path in modules:
        imported = imported_modules(path)
        assert not any(name.startswith(("fastapi", "starlette", "app.api", "app.observability")) for name in imported), path.name
