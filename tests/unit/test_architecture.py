"""The rules of the layout (docs/architecture.md), checked by reading the code's imports and calls."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import REPO

PACKAGE = REPO / "bakery"
WINGS = ("build", "doctor", "manifest", "release", "clean", "bench", "tags")
SHARED = ("oci", "config")
LONG_FUNCTIONS_CHECKED = ("release", "clean", "bench")


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = modules()


def tree(name: str) -> ast.Module:
    return ast.parse(MODULES[name].read_text(encoding="utf-8"))


def imported(name: str) -> set[str]:
    """Every module a module imports, at the top or inside a function (``from a import b`` counts a.b when b is a
    module, else a)."""
    out: set[str] = set()
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree(name)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in MODULES else base)
    return out


def wing_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in WINGS + SHARED) else None


def test_there_are_no_import_circles() -> None:
    graph = {m: {i for i in imported(m) if i in MODULES and i != m} for m in MODULES}
    # a package's __init__ that only names lazy exports is not an edge to its modules
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


@pytest.mark.parametrize("name", [m for m in MODULES if wing_of(m) in SHARED])
def test_oci_and_config_import_no_wing_and_no_invoke(name: str) -> None:
    bad = {i for i in imported(name) if i.split(".")[0] == "invoke" or
           (i.startswith("bakery.") and (wing_of(i) in WINGS or i in ("bakery.cli", "bakery.tasks", "bakery.program")))}
    assert bad == set()


@pytest.mark.parametrize("name", [m for m in MODULES if wing_of(m) in WINGS and not m.endswith(".tasks")])
def test_only_a_wings_tasks_module_imports_invoke_or_the_cli(name: str) -> None:
    bad = {i for i in imported(name) if i.split(".")[0] == "invoke" or i in ("bakery.cli", "bakery.tasks")}
    assert bad == set()


@pytest.mark.parametrize("name", [m for m in MODULES if wing_of(m) in WINGS])
def test_no_wing_imports_another_wings_tasks(name: str) -> None:
    bad = {i for i in imported(name) if i.endswith(".tasks") and wing_of(i) != wing_of(name)}
    assert bad == set()


def calls(name: str) -> Iterator[ast.Call]:
    for node in ast.walk(tree(name)):
        if isinstance(node, ast.Call):
            yield node


def dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


STARTERS = {"subprocess.run", "subprocess.Popen", "subprocess.call", "subprocess.check_call", "subprocess.check_output",
            "os.system", "os.popen", "os.execv", "os.execvp", "os.spawnv", "os.spawnvp"}


@pytest.mark.parametrize("name", [m for m in MODULES if m != "bakery.process"])
def test_only_process_starts_programs(name: str) -> None:
    assert [dotted(c.func) for c in calls(name) if dotted(c.func) in STARTERS] == []


@pytest.mark.parametrize("name", [m for m in MODULES if m != "bakery.docker"])
def test_only_docker_builds_docker_argv(name: str) -> None:
    bad = []
    for c in calls(name):
        if isinstance(c.func, ast.Attribute) and c.func.attr == "cmd":
            bad.append(f"line {c.lineno}: .cmd(...)")
    for node in ast.walk(tree(name)):
        if isinstance(node, ast.List) and node.elts and isinstance(node.elts[0], ast.Constant) \
                and node.elts[0].value == "docker" and len(node.elts) > 1:
            bad.append(f"line {node.lineno}: ['docker', ...]")
    assert bad == []


def strings(name: str) -> Iterator[tuple[int, str]]:
    module = tree(name)
    docstrings = {id(n.body[0].value) for n in ast.walk(module)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    for node in ast.walk(module):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


@pytest.mark.parametrize("name", [m for m in MODULES if m != "bakery.oci.registry"])
def test_only_the_registry_client_builds_registry_urls(name: str) -> None:
    assert [(ln, s) for ln, s in strings(name) if "/v2/" in s and "/v2/`" not in s] == []


@pytest.mark.parametrize("name", [m for m in MODULES if not m.endswith(".tasks") and m not in ("bakery.cli",)])
def test_nothing_outside_a_task_prints_except_to_the_out_it_is_given(name: str) -> None:
    bare = [c.lineno for c in calls(name) if dotted(c.func) == "print" and not any(k.arg == "file" for k in c.keywords)]
    assert bare == []


@pytest.mark.parametrize("name", list(MODULES))
def test_no_module_is_over_500_lines(name: str) -> None:
    assert len(MODULES[name].read_text(encoding="utf-8").splitlines()) <= 500


@pytest.mark.parametrize("name", [m for m in MODULES if wing_of(m) in LONG_FUNCTIONS_CHECKED])
def test_no_function_in_release_clean_bench_is_over_60_lines(name: str) -> None:
    long = [f"{n.name} ({n.end_lineno - n.lineno + 1} lines)" for n in ast.walk(tree(name))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno
            and n.end_lineno - n.lineno + 1 > 60]
    assert long == []


@pytest.mark.parametrize("wing", WINGS + SHARED)
def test_each_wing_states_what_it_offers(wing: str) -> None:
    init = tree(f"bakery.{wing}")
    assert ast.get_docstring(init), f"bakery/{wing}/__init__.py has no docstring"
    names = {t.id for n in init.body if isinstance(n, (ast.Assign, ast.AnnAssign))
             for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
             for t in (t.elts if isinstance(t, ast.Tuple) else [t]) if isinstance(t, ast.Name)}
    assert "__all__" in names
