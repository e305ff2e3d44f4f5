"""Data flows one way: files -> embedder -> index -> answers (the CLI, the server). A module may import
only from its own part or the parts beneath it, and no modules import each other in a circle, so each
part can be read, tested and replaced without the ones above it. Imports made only for type hints
(``if TYPE_CHECKING:``) do not count: they never run."""

from __future__ import annotations

import ast
from pathlib import Path

import lookalike

PACKAGE = Path(lookalike.__file__).parent

LAYERS = {"errors": 0, "paths": 0, "arguments": 0, "embedder": 1, "results": 2, "index": 3, "__init__": 4,
          "engines": 4, "remote": 4, "server": 5, "cli": 6, "demo": 6}
"""Each part of the package and its height: an import may reach down or across, never up. The package
itself (``lookalike.open``) is the library's face, over the index: the CLI and the server use it."""

ONE_UNIT = {frozenset({"lookalike.index.vectors", "lookalike.index.ondisk"})}
"""Modules that import each other, read as one: ``vectors.py`` chooses the layout and loads the large
one from ``ondisk.py`` when asked (inside a function), which saves files with its helpers."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path) -> set[str]:
    """The ``lookalike`` modules ``path`` imports when it runs (at the top or inside a function)."""
    tree = ast.parse(path.read_text())
    hinted = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
              and "TYPE_CHECKING" in ast.unparse(block.test) for node in ast.walk(block)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in hinted:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lookalike"):
            found |= {f"{node.module}.{a.name}" if is_module(f"{node.module}.{a.name}") else node.module
                      for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("lookalike")}
    return found


def is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS["__init__" if len(parts) == 1 else parts[1]]


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): runtime_imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_no_module_imports_from_a_part_above_its_own():
    upward = sorted(f"{module} imports {target}" for module, targets in import_graph().items()
                    for target in targets if layer(target) > layer(module))
    assert upward == []


def test_no_modules_import_each_other_in_a_circle():
    graph = import_graph()
    circles, done, path = [], set(), []

    def visit(module: str) -> None:
        if module in path:
            circle = path[path.index(module):]
            if frozenset(circle) not in ONE_UNIT:
                circles.append(circle + [module])
            return
        if module in done:
            return
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if target != module and not module.startswith(target + "."):  # a package's own modules
                visit(target)
        path.pop()
        done.add(module)

    for module in graph:
        visit(module)
    assert circles == []


def test_the_duplicate_search_reads_from_its_looks_and_they_never_from_it():
    """The second looks (stored traits, thumbnails, files' keypoints) are judged on their own, the
    clustering above them: a look that called back into the clustering would tangle the two."""
    graph = import_graph()
    below = ["lookalike.index.records", "lookalike.index.thumbnails", "lookalike.index.looks",
             "lookalike.index.geometry"]
    assert {"lookalike.index.looks", "lookalike.index.geometry", "lookalike.index.records"} <= graph[
        "lookalike.index.duplicates"]
    for module in below:
        assert "lookalike.index.duplicates" not in graph[module]
        assert not {"lookalike.index.collection", "lookalike.index.review"} & graph[module]
