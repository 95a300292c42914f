"""The edge of the process: one exit-status enum, one error printer, one logger name, no import cycle."""
from __future__ import annotations

import ast
import io
import re
from pathlib import Path

from dynamic_dynamodb import edge
from dynamic_dynamodb.edge import Exit

PACKAGE = Path(__file__).resolve().parent.parent / "dynamic_dynamodb"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The package's modules that `path` imports, at the top or inside a function."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # imports for the type checker only are no cycle at run time
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING"
                   for n in ast.walk(node)}
    for node in (n for n in ast.walk(tree) if id(n) not in typing_only):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            if node.level == 0 and not mod.startswith("dynamic_dynamodb"):
                continue
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("dynamic_dynamodb"))
    return found


# Known and to be removed: mode_switch imports the backtest inside a function, and the
# backtest runs the loop that imports mode_switch.
KNOWN_CYCLES = {("dynamic_dynamodb.mode_switch", "dynamic_dynamodb.simulation")}


def test_no_module_of_the_package_imports_itself_back():
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: {i for i in imports_of(p) if i in modules and i != m and (m, i.rsplit(".", 1)[0]) not in KNOWN_CYCLES
                 and (m, i) not in KNOWN_CYCLES}
             for m, p in modules.items()}
    # a package's __init__ is imported by every module under it: not an edge of a cycle
    graph = {m: {i for i in deps if not m.startswith(i + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for dep in sorted(graph[m]):
            assert state.get(dep) != 1, " -> ".join(path + [m, dep])
            if dep not in state:
                visit(dep, path + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_exit_statuses_and_the_logger_name_are_defined_once():
    for path in PACKAGE.rglob("*.py"):
        if path.name == "edge.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^EXIT_\w+(, EXIT_\w+)* = ", text, re.MULTILINE), path.name
        assert 'getLogger("dynamic-dynamodb")' not in text, path.name
        assert "error: {" not in text, path.name  # every error line goes through edge.error


def test_the_error_printer_writes_one_line_and_returns_the_status():
    out = io.StringIO()
    assert edge.error("bad value\nfor check-interval", Exit.USAGE, out) == 2
    assert out.getvalue() == "dynamic-dynamodb: error: bad value for check-interval\n"
    assert (int(Exit.OK), int(Exit.FAILURE), int(Exit.USAGE)) == (0, 1, 2)
