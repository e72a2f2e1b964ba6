"""The shape of qa/: data flows one way between its subpackages (qa.LAYERS), and no import cycle anywhere
(imports inside functions count too)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from qa import EDGES, FOUNDATIONS, LAYERS

QA = Path(__file__).resolve().parent.parent / "qa"


def module_name(path: Path) -> str:
    parts = path.relative_to(QA.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The qa modules `path` imports, wherever in the file (top level, functions, TYPE_CHECKING blocks)."""
    found = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in known}
    return found - {module_name(path)}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in QA.rglob("*.py")}
    known = set(paths)
    return {name: imports_of(path, known) - {"qa"} for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by a depth-first search, each as the path that closes it."""
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_no_module_of_qa_imports_itself_back():
    assert cycles(import_graph()) == []


def layer_of(module: str) -> int:
    """Where a module sits: foundations below every layer, the layers in qa.LAYERS's order, the edges on top."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return 1 + LAYERS.index(parts[1])
    if parts[-1] in FOUNDATIONS:
        return 0
    assert parts[-1] in EDGES or module == "qa", f"{module} is in no layer: name it in qa/__init__.py"
    return len(LAYERS) + 1


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{module} -> {imported}" for module, imports in graph.items() for imported in imports
                  if layer_of(imported) > layer_of(module))


def test_data_flows_one_way_between_the_layers():
    """A module imports only from its own layer, the layers before it, and the foundations (qa.LAYERS)."""
    assert set(LAYERS) == {p.parent.name for p in QA.glob("*/__init__.py")}
    assert upward_imports(import_graph()) == []


def test_the_layer_check_sees_an_upward_import():
    assert upward_imports({"qa.reading.corpus": {"qa.answering.search", "qa.settings"}}) == \
        ["qa.reading.corpus -> qa.answering.search"]
    assert upward_imports({"qa.cli": {"qa.serving.engine"}, "qa.serving.engine": {"qa.errors"}}) == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_hashing_has_one_home():
    """Every checksum and key is qa/files.py's sha256 (one helper per job, not one per module)."""
    users = sorted(module_name(p) for p in QA.rglob("*.py")
                   if any(isinstance(n, (ast.Import, ast.ImportFrom))
                          and "hashlib" in ([a.name for a in n.names] if isinstance(n, ast.Import) else [n.module])
                          for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))))
    assert users == ["qa.files"]


def test_every_package_and_data_file_ships():
    """pyproject.toml names every package of qa/ (a subpackage left out would be missing from an install),
    and the data files the code reads beside it."""
    import tomllib
    config = tomllib.loads((QA.parent / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    packages = {module_name(p) for p in QA.rglob("__init__.py")}
    assert packages <= set(config["packages"])
    data = {p for p in QA.rglob("*") if p.is_file() and p.suffix in (".txt", ".json", ".css", ".npy")}
    shipped = {path for package, patterns in config["package-data"].items() for pattern in patterns
               for path in (QA.parent / package.replace(".", "/")).glob(pattern)}
    assert data == shipped

# ------------------------------------------------------------------ the module list, from the modules themselves

BEGIN, END = "Modules (generated from each module's docstring: python tests/test_layers.py --write):", \
    "(end of the generated list)"


def summary(path: Path) -> str:
    """A module's docstring's first paragraph, on one line."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return " ".join(doc.split("\n\n")[0].split())


def listed_files() -> list[Path]:
    """The top level's modules, then each layer (its package, then its modules), in qa.LAYERS's order."""
    top = sorted(p for p in QA.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    return top + [p for layer in LAYERS for p in [QA / layer / "__init__.py"]
                  + sorted(p for p in (QA / layer).rglob("*.py") if p.name != "__init__.py")]


def module_list() -> str:
    paths = listed_files()
    names = [str(p.parent.relative_to(QA)) + "/" if p.name == "__init__.py" else str(p.relative_to(QA))
             for p in paths]
    width = max(map(len, names))
    return "\n".join(f"    {name.ljust(width)}  {summary(path)}" for name, path in zip(names, paths))


def package_docstring_with(listing: str) -> str:
    text = (QA / "__init__.py").read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n\n" + listing + "\n\n" + text[end:]


def test_the_module_list_is_the_modules_own_words():
    """qa/__init__.py lists every module of qa/ with the first paragraph of its own docstring."""
    text = (QA / "__init__.py").read_text(encoding="utf-8")
    assert text == package_docstring_with(module_list()), "run: python tests/test_layers.py --write"


def test_the_design_notes_name_every_module():
    design = (QA.parent / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    table = design[design.index("## The pipeline"):design.index("**Names.**")]
    named = set(re.findall(r"`([\w/]+\.py)`", table))
    modules = {str(p.relative_to(QA)) for p in QA.rglob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    assert modules - named == set() and named - modules - {"app.py"} == set()


if __name__ == "__main__":  # python tests/test_layers.py --write: regenerate qa/__init__.py's module list
    import sys
    if sys.argv[1:] == ["--write"]:
        (QA / "__init__.py").write_text(package_docstring_with(module_list()), encoding="utf-8")
