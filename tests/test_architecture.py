"""The package's shape: footseg's parts import each other in one direction only, so there are no import cycles.

Every ``import footseg...`` statement counts, including those inside functions: an import moved into a function to
dodge a cycle is still a cycle in the design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "footseg"

# The layers, lowest first. A part may import its own modules and any part of a lower layer, nothing else.
LAYERS: list[set[str]] = [
    {"__init__", "errors"},  # footseg/__init__.py holds only the version
    {"atomic"},  # where and how footseg writes: its refusals are FootsegErrors
    {"one_writer"},  # one job at a time writes a folder
    {"config", "metrics", "provenance"},
    {"data", "models"},
    {"runtime"},  # resolve a model, run it: what eval, video and the web page all sit on
    {"train", "deploy", "eval"},
    {"bench"},  # timing, the bench table, the peer, the Pareto sweep
    {"compress", "report"},
    {"recipe"},  # runs renders, training, channel pruning and export in order
    {"pipeline"},
    {"cli"},
    {"__main__"},
]


def part_of(module: str) -> str:
    """``footseg.eval.evaluate`` -> ``eval``; ``footseg.cli`` -> ``cli``; ``footseg`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> set[str]:
    """The footseg modules a source file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "footseg" or name.startswith("footseg.")}


def part_graph(src: Path = SRC) -> dict[str, set[str]]:
    """Which parts each part imports (edges to itself left out)."""
    graph: dict[str, set[str]] = {}
    for path in src.rglob("*.py"):
        part = path.relative_to(src).with_suffix("").parts[0]  # "eval" for eval/x.py, "cli" for cli.py
        graph.setdefault(part, set()).update(part_of(m) for m in imports_of(path) if part_of(m) != part)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of parts (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_there_are_no_import_cycles_between_parts() -> None:
    cycle = find_cycle(part_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_every_part_imports_only_lower_layers() -> None:
    rank = {part: i for i, layer in enumerate(LAYERS) for part in layer}
    graph = part_graph()
    unknown = sorted(set(graph) - set(rank))
    assert not unknown, f"parts missing from LAYERS (place them): {unknown}"
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if rank[b] >= rank[a])
    assert not upward, f"imports of a part in the same or a higher layer: {upward}"


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("where", ["module level", "inside a function"])
def test_an_import_anywhere_in_a_file_is_seen(tmp_path: Path, where: str) -> None:
    (tmp_path / "eval").mkdir()
    (tmp_path / "deploy").mkdir()
    code = "from footseg.deploy.export import x\n"
    if where != "module level":
        code = "def f():\n    " + code
    (tmp_path / "eval" / "evaluate.py").write_text(code)
    (tmp_path / "deploy" / "export.py").write_text("import footseg.eval.evaluate\n")
    graph = part_graph(tmp_path)
    assert find_cycle(graph) in (["deploy", "eval", "deploy"], ["eval", "deploy", "eval"])
