"""The layout's rule (ARCHITECTURE.md, "What may import what"): kit's packages form a stack, and a module imports
only from its own package or from the packages below it, never from one above; and no modules import each other
round a loop. Imports inside functions count like any other: a lazy import still ties two modules together.

The imports are read from the source with `ast` (nothing is imported), so the check takes well under a second.
"""

from __future__ import annotations

import ast
from pathlib import Path

KIT = Path(__file__).resolve().parents[1] / "kit"

# The stack, bottom first. A module belongs to the entry naming it or its package; entries of one layer may import
# each other's modules (without a loop). The first layer is the shared core: kit's own top-level modules.
LAYERS = (
    ("kit", "kit.config", "kit.recipes", "kit.errors", "kit.progress", "kit.quiet", "kit.model_names", "kit.assets",
     "kit.runlock", "kit.runfiles"),
    ("kit.data",),
    ("kit.capture",),
    ("kit.preprocessing",),
    ("kit.models",),
    ("kit.seeing",),
    ("kit.training",),
    ("kit.contract",),
    ("kit.live",),
    ("kit.kaggle",),
    ("kit.demo",),
    ("kit.cli", "kit.__main__"),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(KIT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def kit_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(KIT.rglob("*.py"))}


def imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The kit modules `path` imports, at its top and inside its functions alike."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y, from . import y
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from kit.data import landmarks` imports the module kit.data.landmarks; `from kit.x import f`, kit.x
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                         for alias in node.names)
    return {module for module in found if module in modules and module != name}


def layer(module: str) -> int | None:
    for index, entries in enumerate(LAYERS):
        for entry in entries:
            if module == entry or (entry != "kit" and module.startswith(entry + ".")):
                return index
    return None


def graph() -> dict[str, set[str]]:
    modules = kit_modules()
    return {name: imports(path, modules) for name, path in modules.items()}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One loop of imports (its modules, the first repeated at the end), or None."""
    state, stack = {}, []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_every_module_has_a_place_in_the_stack():
    """A new module goes into a package (or, for the shared core, into LAYERS' first entry) on purpose: one that
    no layer names fails here, before the import rule can pass it by."""
    unplaced = [module for module in kit_modules() if layer(module) is None]
    assert not unplaced, f"no layer in tests/test_layout.py LAYERS names {unplaced}: move them into a package"


def test_no_module_imports_from_a_package_above_its_own():
    """Data flows up the stack (data -> preprocessing -> models -> training -> contract -> kaggle -> cli), and
    imports point down it: a module that needs something from a later stage is in the wrong package, or the thing
    is."""
    upward = [f"{source} imports {target}" for source, targets in graph().items() for target in sorted(targets)
              if None not in (layer(source), layer(target)) and layer(target) > layer(source)]  # unplaced: above
    assert not upward, "imports against the stack (ARCHITECTURE.md):\n" + "\n".join(upward)


def test_no_import_cycle():
    """No module imports itself back through others, even from inside a function."""
    found = cycle(graph())
    assert found is None, "import cycle: " + " -> ".join(found)


def test_the_reader_sees_imports_inside_functions_and_loops():
    """The checks above are only as good as the graph they read: it holds an import made inside a function
    (kit.capture.holistic draws its landmark table with kit.data.synth's writer), and `cycle` finds a loop."""
    edges = graph()
    assert "kit.data.synth" in edges["kit.capture.holistic"]
    assert "kit.training.train" in edges["kit.training.full"]
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None
