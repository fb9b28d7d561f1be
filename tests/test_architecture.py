"""Dependencies point one way: api -> service -> nn; the engine imports only numpy and the standard library.
Test modules share helpers through tests/support, never by importing one another."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"
NN_DIR = APP / "nn"
# What the engine may not load, however it would come to be loaded.
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


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, source: str | None = None) -> set[str]:
    """Every module ``path`` (or ``source`` read as if it were ``path``) imports, relative imports
    resolved; ``from m import x`` names both ``m`` and ``m.x`` (``x`` may be a module: ``from app import service``)."""
    tree = ast.parse(path.read_text(encoding="utf-8") if source is None else source)
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([module] if module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def test_relative_imports_are_resolved():
    """The checks see what a relative import reaches: ``from .. import service`` in the engine is app.service."""
    source = "from .. import service\nfrom .losses import Loss\nfrom . import errors\n"
    assert imported_modules(NN_DIR / "network.py", source) == {
        "app",
        "app.service",
        "app.nn.losses",
        "app.nn.losses.Loss",
        "app.nn",
        "app.nn.errors",
    }


def test_engine_imports_only_numpy_the_stdlib_and_itself():
    for path in NN_DIR.rglob("*.py"):
        for name in imported_modules(path):
            root = name.split(".")[0]
            assert name == "app.nn" or name.startswith("app.nn.") or root == "numpy" or root in sys.stdlib_module_names, (
                f"{path.name} imports {name}"
            )


@pytest.mark.slow
def test_importing_the_engine_loads_no_web_framework():
    """Importing every engine module (and so app/__init__.py) loads nothing FORBIDDEN: this fails
    where the source check cannot see, e.g. app/__init__.py importing the web layer, or importlib."""
    engine = sorted(module_name(path) for path in NN_DIR.rglob("*.py"))
    code = (
        "import importlib, sys\n"
        f"for name in {engine!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r}))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_routers_hold_no_maths():
    routes = APP / "api" / "routes"
    for path in routes.glob("*.py"):
        assert not any(name.split(".")[0] == "numpy" or name.startswith("app.nn") for name in imported_modules(path)), path.name


def test_service_does_not_import_the_http_layer():
    modules = sorted((APP / "service").glob("*.py"))
    assert len(modules) > 5, "app/service/ is a package of use cases"
    for path in modules:
        imported = imported_modules(path)
        assert not any(name.startswith(("fastapi", "starlette", "app.api", "app.observability")) for name in imported), path.name


def imports_a_test_module(name: str) -> bool:
    """``name`` is (or is inside) a test module or a test package, not tests.support or conftest."""
    parts = name.split(".")
    if any(part.startswith("test_") for part in parts):
        return True
    if parts[0] != "tests" or len(parts) == 1:
        return False
    return parts[1] not in ("support", "conftest")


def test_test_modules_import_helpers_only_from_tests_support():
    paths = [*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").glob("*.py"), *(ROOT / ".ci").glob("*.py")]
    assert paths
    for path in paths:
        reached = sorted(name for name in imported_modules(path) if imports_a_test_module(name))
        assert not reached, f"{path.relative_to(ROOT)} imports {reached}: shared helpers belong in tests/support"
