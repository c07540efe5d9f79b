"""Imports go one way: core <- nn <- domains <- data <- methods <- io <- workflows <- commands/cli."""
import ast
import pathlib

import sciflow

ROOT = pathlib.Path(sciflow.__file__).parent
RANK = {"core": 0, "nn": 1, "domains": 2, "data": 3, "methods": 4, "io": 5, "workflows": 6, "commands": 7, "cli": 7,
        "__main__": 8, "__init__": 8}
HEAVY = ("ase", "rdkit", "mdtraj", "tblite", "openmm", "ompl", "mitsuba", "sella", "openmmtools")


def layer_of(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT).parts
    return rel[0] if len(rel) > 1 else pathlib.Path(rel[0]).stem


def imported_layers(path: pathlib.Path):
    tree = ast.parse(path.read_text())
    pkg = path.relative_to(ROOT).parent.parts
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(pkg[: len(pkg) - (node.level - 1)]) if node.level > 1 else list(pkg)
                mod = [*base, *(node.module.split(".") if node.module else [])]
                if not mod:  # from . import x  at package root
                    mod = [a.name for a in node.names][:1]
                yield node.lineno, mod[0] if mod else ""
            elif node.module and node.module.startswith("sciflow."):
                yield node.lineno, node.module.split(".")[1]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("sciflow."):
                    yield node.lineno, a.name.split(".")[1]


def test_imports_go_one_way():
    bad = []
    for path in ROOT.rglob("*.py"):
        here = layer_of(path)
        if here not in RANK:
            continue
        for line, target in imported_layers(path):
            if target in RANK and RANK[target] > RANK[here]:
                bad.append(f"{path.relative_to(ROOT)}:{line} ({here}) imports {target}")
    assert not bad, "layer violations:\n" + "\n".join(bad)


def test_core_imports_only_torch_numpy_pot():
    allowed = {"torch", "numpy", "ot", "tqdm", "__future__", "typing", "collections", "dataclasses", "abc", "math",
               "os", "sys", "time", "json", "tempfile", "pathlib", "contextlib", "platform", "importlib", "fcntl",
               "functools", "itertools", "warnings", "hashlib", "enum", "pickle", "re", "signal", "threading", "csv"}
    bad = []
    for path in (ROOT / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            for n in names:
                if n.split(".")[0] not in allowed:
                    bad.append(f"{path.relative_to(ROOT)}: {n}")
    assert not bad, bad


def test_heavy_packages_are_not_imported_at_module_level():
    bad = []
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only; imports inside functions are fine
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            bad += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in HEAVY]
    assert not bad, bad
