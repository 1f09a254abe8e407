"""The architecture's import rules, checked on the source: protocols is pure, edge ⟂ cloud,
runtime (what both run on) imports neither."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "protocols": {"edge", "cloud", "anju", "runtime"},
    "runtime": {"edge", "cloud", "anju"},
    "edge": {"cloud", "anju"},
    "cloud": {"edge", "anju"},
}
# protocols is bytes-and-dicts only: no sockets, clocks, databases or I/O libraries.
IMPURE_FOR_PROTOCOLS = {
    "socket",
    "asyncio",
    "sqlite3",
    "sqlalchemy",
    "aiomqtt",
    "paho",
    "pymodbus",
    "bleak",
    "serial",
    "httpx",
    "fastapi",
    "time",
    "onnxruntime",
    "cv2",
    "subprocess",
    "os",
}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (a lazy import inside a function counts)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def imported_roots(path: Path) -> set[str]:
    return {module.split(".")[0] for module in imported_modules(path)}


def imports_under(folder: Path, prefix: str) -> dict[str, list[str]]:
    """The files under `folder` that import `prefix` or a module inside it."""
    found = {
        str(f.relative_to(folder)): sorted(
            m for m in imported_modules(f) if m == prefix or m.startswith(prefix + ".")
        )
        for f in sorted(folder.rglob("*.py"))
    }
    return {f: mods for f, mods in found.items() if mods}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_respect_boundaries(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no sources found under {package}/"
    bad = {str(f.relative_to(ROOT)): sorted(imported_roots(f) & FORBIDDEN[package]) for f in files}
    assert {f: mods for f, mods in bad.items() if mods} == {}


def test_protocols_do_no_io() -> None:
    bad = {
        str(f.relative_to(ROOT)): sorted(imported_roots(f) & IMPURE_FOR_PROTOCOLS)
        for f in sorted((ROOT / "protocols").rglob("*.py"))
    }
    assert {f: mods for f, mods in bad.items() if mods} == {}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        # billing reads readings from the database; how they arrived is not its business
        ("cloud/billing", "cloud.ingest"),
    ],
)
def test_cloud_layers(package: str, forbidden: str) -> None:
    assert imports_under(ROOT / package, forbidden) == {}


def cloud_package_imports(root: Path) -> dict[str, set[str]]:
    """For each package of `root` (a cloud/ tree), the sibling packages its files import."""
    graph: dict[str, set[str]] = {}
    for f in sorted(root.rglob("*.py")):
        parts = f.relative_to(root).with_suffix("").parts
        graph.setdefault(parts[0], set()).update(
            m.split(".")[1]
            for m in imported_modules(f)
            if m.startswith(root.name + ".") and m.split(".")[1] != parts[0]
        )
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle of the graph, once each, as the path that closes it."""
    cycles: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == path[0]:
                cycles.append([*path, nxt])
            elif nxt not in path and nxt > path[0]:  # each cycle from its smallest member
                walk(nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, [start])
    return cycles


def test_cloud_packages_import_no_cycle() -> None:
    """Each package of cloud/ can be read without its importers (e.g. ingest records command
    results, so commands, whose dispatcher is ingest's sibling, may not import ingest)."""
    assert import_cycles(cloud_package_imports(ROOT / "cloud")) == []


def test_cycle_check_sees_a_cycle(tmp_path: Path) -> None:
    root = tmp_path / "cloud"
    for package, imports in [("ingest", "cloud.commands.x"), ("commands", "cloud.ingest.y")]:
        (root / package).mkdir(parents=True)
        (root / package / "m.py").write_text(f"def f():\n    import {imports}\n")
    assert import_cycles(cloud_package_imports(root)) == [["commands", "ingest", "commands"]]


def test_checker_sees_a_violation(tmp_path: Path) -> None:
    """The rule above must be able to fail: feed it a file that breaks it."""
    bad = tmp_path / "bad.py"
    bad.write_text("import cloud.db\nfrom edge.config import GatewayConfig\n")
    assert imported_roots(bad) & FORBIDDEN["protocols"] == {"cloud", "edge"}
    (tmp_path / "billing.py").write_text("def f():\n    from cloud.ingest.store import x\n")
    assert imports_under(tmp_path, "cloud.ingest") == {"billing.py": ["cloud.ingest.store"]}


def test_cli_import_is_light() -> None:
    """`anju --help` must not pull in the web stack, the database or hardware libraries."""
    heavy = ["fastapi", "sqlalchemy", "pymodbus", "aiomqtt", "amqtt", "uvicorn", "onnxruntime"]
    code = f"import sys, anju.cli; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
