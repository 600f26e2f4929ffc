"""The import picture: each folder of src/cnnlab imports only the layers below it, module-level
imports form no circle, and every import inside a function says why it is deferred."""

import ast
from pathlib import Path

import cnnlab

SRC = Path(cnnlab.__file__).parent
LAYERS = {"errors": 0, "files": 0, "display": 0, "version": 0, "scratch": 1, "models": 2,
          "data": 2, "train": 3, "export": 4, "analysis": 5, "experiments": 6, "cli": 7}
"""Each top-level folder or module and its layer; the package itself (``cnnlab``) is on top."""
TOP = max(LAYERS.values()) + 1
DEFERRED = "# deferred:"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def imported(node: ast.AST, known: dict[str, Path]) -> list[str]:
    """The cnnlab modules an import statement loads (a name imported from a package counts as
    its submodule when there is one)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "cnnlab"]
    if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
        return []
    if node.module.split(".")[0] != "cnnlab":
        return []
    subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known]
    return subs or [node.module]


def layer(module: str) -> tuple[int, str]:
    """(layer, room) of a module: its top-level folder, or the base modules as one room."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return TOP, "cnnlab"
    rank = LAYERS[parts[1]]
    return rank, "base" if rank == 0 else parts[1]


def top_level_imports() -> dict[str, set[str]]:
    known = modules()
    graph = {}
    for name, path in known.items():
        body = ast.parse(path.read_text()).body
        graph[name] = {m for node in body for m in imported(node, known)} - {name}
    return graph


def test_every_folder_has_a_layer():
    rooms = {p.name.removesuffix(".py") for p in SRC.iterdir()
             if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert rooms - {"__init__", "__main__"} == set(LAYERS)


def test_no_module_imports_a_higher_layer():
    upward = [f"{name} imports {target}" for name, targets in top_level_imports().items()
              for target in targets
              if layer(target)[0] > layer(name)[0]
              or layer(target)[0] == layer(name)[0] and layer(target)[1] != layer(name)[1]]
    assert upward == []


def test_module_level_imports_form_no_circle():
    graph = top_level_imports()
    state: dict[str, str] = {}
    circles = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph.get(name, ())):
            if state.get(target) == "open":
                circles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[name] = "done"

    for name in graph:
        if name not in state:
            visit(name, [name])
    assert circles == []


def test_imports_inside_functions_say_why_they_are_deferred():
    known = modules()
    silent = []
    for name, path in known.items():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for statement in node.body:
                if imported(statement, known) and not _explained(lines, statement.lineno):
                    silent.append(f"{name}:{statement.lineno}")
    assert silent == []


def _explained(lines: list[str], lineno: int) -> bool:
    """Whether the import at `lineno` (1-based) or the block of imports it ends has a
    ``# deferred:`` comment on the line above."""
    above = lineno - 2
    while above >= 0 and lines[above].lstrip().startswith(("from ", "import ", "#")):
        if lines[above].lstrip().startswith(DEFERRED):
            return True
        above -= 1
    return False


def test_the_checks_see_a_circle_and_an_upward_import():
    assert layer("cnnlab.models.spec")[0] < layer("cnnlab.train.trainer")[0]
    assert layer("cnnlab.models.spec")[1] != layer("cnnlab.data.loader")[1]
    assert not _explained(["def f():", "    from cnnlab import x"], 2)
    assert _explained(["def f():", "    # deferred: heavy", "    from cnnlab import x"], 3)
