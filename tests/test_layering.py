"""The layering DESIGN.md promises, checked on the source: imports flow gateway → schema →
resolvers → adapters; resolvers and schema reach a member's source only through the source port,
never a driver or a concrete adapter; nothing in the serving code imports the demo."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DRIVERS = ("asyncpg", "aiomysql", "asyncmy", "pymysql", "httpx", "psycopg")
CONCRETE_ADAPTERS = ("adapters.exchange", "adapters.mysql")


def _imports(package: str) -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [(str(path.relative_to(ROOT)), alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((str(path.relative_to(ROOT)), node.module))
    return found


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("package", ["resolvers", "schema"])
def test_no_driver_and_no_concrete_adapter_above_the_port(package: str) -> None:
    offending = [
        (path, module)
        for path, module in _imports(package)
        if _under(module, DRIVERS + CONCRETE_ADAPTERS)
    ]
    assert offending == []


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("adapters", ("gateway", "schema", "resolvers", "strawberry")),
        ("resolvers", ("gateway", "schema", "strawberry")),
        ("schema", ("gateway",)),
    ],
)
def test_imports_flow_one_way(package: str, forbidden: tuple[str, ...]) -> None:
    assert [(p, m) for p, m in _imports(package) if _under(m, forbidden)] == []


def test_serving_code_does_not_import_the_demo() -> None:
    serving = [
        (path, module)
        for package in ("adapters", "resolvers", "schema", "gateway")
        for path, module in _imports(package)
        if not path.startswith(("gateway/demo/", "gateway/cli.py"))
    ]
    assert [(p, m) for p, m in serving if _under(m, ("gateway.demo",))] == []
