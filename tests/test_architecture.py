"""The package's structure rules (docs/architecture.md), checked from the source's own imports.

* Studies (calibration, benchmarks, robustness, classifier) import the core, never each other.
* Scripts: ``benchmarks/`` (what a user runs) import the package only; ``studies/`` (design studies, not
  installed) import the package and studies' shared modules; the package imports nothing from ``studies/``.
* No import cycle between the package's subpackages (module-level imports).
* One metric factory: metrics are built only in ``metric/registry.py``.
* One home per formulation: a formulation is compared (``x.formulation == ...``, ``formulation in ...``)
  only in ``features/formulations.py``; everyone else calls the Formulation object.
* One owner of a trunk's configuration: ``VGG16Trunk(...)`` is constructed only in ``trunk/`` (by
  ``TrunkConfig.build``).
* No module over 700 lines.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

PKG_DIR = Path(__file__).resolve().parents[1] / "invariant_lpips"
STUDIES = {"calibration", "benchmarks", "robustness", "classifier"}
FACTORY_NAMES = {"get_metric", "build_metric", "build_module", "_build_module", "make_metric", "_build",
                 "create_metric"}


def _modules() -> List[Path]:
    return sorted(p for p in PKG_DIR.rglob("*.py") if "shipped" not in p.parts)


def _owner(path: Path) -> str:
    rel = path.relative_to(PKG_DIR).parts
    return rel[0] if len(rel) > 1 else rel[0][:-3]


def _imports(path: Path, module_level_only: bool) -> List[Tuple[int, str]]:
    """Absolute ``invariant_lpips.*`` module names imported by ``path`` (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    pkg_parts = ["invariant_lpips"] + list(path.relative_to(PKG_DIR).parts[:-1])
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    out = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:  # from . import x, y
                    out += [(node.lineno, f"{name}.{a.name}") for a in node.names]
                    continue
            else:
                name = node.module or ""
            out.append((node.lineno, name))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return [(n, m) for n, m in out if m.startswith("invariant_lpips")]


def _subpackage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "invariant_lpips"


def test_studies_never_import_each_other():
    bad = []
    for path in _modules():
        own = _owner(path)
        if own not in STUDIES:
            continue
        for line, mod in _imports(path, module_level_only=False):
            other = _subpackage(mod)
            if other in STUDIES and other != own:
                bad.append(f"{path.relative_to(PKG_DIR.parent)}:{line} ({own}) imports {mod}")
    assert not bad, "studies must import the core only:\n" + "\n".join(bad)


REPO = PKG_DIR.parent
#: the modules of studies/ that its scripts share (studies/README.md); every other file there is a script
STUDIES_SHARED = {"designs", "registered_designs", "selection", "probes"}


def _script_imports(path: Path) -> List[Tuple[int, str]]:
    """Every module name ``path`` imports (any level of the file)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
        out += [(node.lineno, n) for n in names]
    return out


def _scripts_importing(folder: str, forbidden) -> List[str]:
    return [f"{folder}/{path.name}:{line} imports {name}"
            for path in sorted((REPO / folder).glob("*.py")) for line, name in _script_imports(path)
            if forbidden(path, name.split(".")[0])]


def test_benchmark_scripts_never_import_each_other_nor_the_studies():
    """The scripts in benchmarks/ (what a user runs) import the package only: not each other, not studies/."""
    stems = {p.stem for p in (REPO / "benchmarks").glob("*.py")}
    studies = {p.stem for p in (REPO / "studies").glob("*.py")} | {"studies"}
    bad = _scripts_importing("benchmarks", lambda path, top: top in stems or top in studies or top == "benchmarks")
    assert not bad, "benchmark scripts must import the package, not each other or studies/:\n" + "\n".join(bad)


def test_every_name_scripts_import_from_the_package_exists():
    """Each ``from invariant_lpips... import name`` in benchmarks/ and studies/ (also inside functions) resolves:
    a renamed or moved function breaks the test, not the user's run."""
    import importlib

    missing = []
    for folder in ("benchmarks", "studies"):
        for path in sorted((REPO / folder).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                        and node.module.split(".")[0] == "invariant_lpips"):
                    continue
                module = importlib.import_module(node.module)
                for alias in node.names:
                    if not hasattr(module, alias.name):
                        try:
                            importlib.import_module(f"{node.module}.{alias.name}")
                        except ImportError:
                            missing.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.module}.{alias.name}")
    assert not missing, "scripts import names the package does not have:\n" + "\n".join(missing)


def test_study_scripts_import_only_the_package_and_the_studies_shared_modules():
    """A script in studies/ imports the package and studies' shared modules, never another script."""
    scripts = {p.stem for p in (REPO / "studies").glob("*.py")} - STUDIES_SHARED
    assert STUDIES_SHARED <= {p.stem for p in (REPO / "studies").glob("*.py")}
    bad = _scripts_importing("studies", lambda path, top: top in scripts or top in ("benchmarks", "studies"))
    assert not bad, ("study scripts may import the package and studies/" + "{" + ",".join(sorted(STUDIES_SHARED))
                     + "}.py only; move what two scripts share into a shared module:\n" + "\n".join(bad))


def test_the_installed_package_imports_nothing_from_studies():
    """studies/ is not installed: the package may not import its modules (by any name they are reachable by)."""
    studies = {p.stem for p in (REPO / "studies").glob("*.py")} | {"studies"}
    bad = [f"{path.relative_to(REPO)}:{line} imports {name}" for path in _modules()
           for line, name in _script_imports(path) if name.split(".")[0] in studies]
    assert not bad, "the package must not import studies/ (it is not installed):\n" + "\n".join(bad)
    text = (REPO / "pyproject.toml").read_text()
    packages = text[text.index("packages = ["):].split("]", 1)[0]
    assert "studies" not in packages and "invariant_lpips" in packages


def test_core_never_imports_a_study():
    bad = []
    for path in _modules():
        own = _owner(path)
        if own in STUDIES or own == "cli":
            continue
        for line, mod in _imports(path, module_level_only=False):
            if _subpackage(mod) in STUDIES:
                bad.append(f"{path.relative_to(PKG_DIR.parent)}:{line} ({own}) imports {mod}")
    assert not bad, "the core must not depend on a study:\n" + "\n".join(bad)


def _find_cycle(graph: Dict[str, Set[str]]):
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_between_subpackages():
    graph: Dict[str, Set[str]] = {}
    for path in _modules():
        own = _owner(path)
        if own in ("__init__", "cli"):
            continue
        for _, mod in _imports(path, module_level_only=True):
            other = _subpackage(mod)
            if other not in (own, "invariant_lpips", "__init__"):
                graph.setdefault(own, set()).add(other)
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle between subpackages: " + " -> ".join(cycle)


def test_no_import_cycle_between_modules():
    graph: Dict[str, Set[str]] = {}
    names = {}
    for path in _modules():
        rel = path.relative_to(PKG_DIR.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        names[name] = path
    for name, path in names.items():
        for _, mod in _imports(path, module_level_only=True):
            # "from pkg import name" may name a module of pkg
            target = mod if mod in names else mod.rsplit(".", 1)[0] if mod.rsplit(".", 1)[0] in names else None
            if target and target != name and not name.startswith(target + ".") and not target.endswith("__init__"):
                if names[target].name == "__init__.py":
                    continue  # a package's __init__ re-exports; its own imports are checked as edges
                graph.setdefault(name, set()).add(target)
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle between modules: " + " -> ".join(cycle)


def test_one_metric_factory():
    found = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name in FACTORY_NAMES:
                found.append(f"{path.relative_to(PKG_DIR.parent)}:{node.lineno} {node.name}")
    assert [f for f in found if "metric/registry.py" not in f] == [], found


FORMULATION_HOME = Path("invariant_lpips/features/formulations.py")


def _mentions_formulation(node: ast.AST) -> bool:
    return any((isinstance(n, ast.Name) and "formulation" in n.id.lower())
               or (isinstance(n, ast.Attribute) and "formulation" in n.attr.lower()) for n in ast.walk(node))


def formulation_comparisons(source: str) -> List[int]:
    """Lines comparing a formulation (``==``, ``!=``, ``in``, ``is`` with anything named *formulation*)."""
    return [node.lineno for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Compare)
            and any(_mentions_formulation(op) for op in [node.left] + node.comparators)]


def trunk_constructions(source: str) -> List[int]:
    """Lines calling ``VGG16Trunk(...)`` (by name or as an attribute)."""
    return [node.lineno for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
            and ((isinstance(node.func, ast.Name) and node.func.id == "VGG16Trunk")
                 or (isinstance(node.func, ast.Attribute) and node.func.attr == "VGG16Trunk"))]


def test_formulations_are_compared_only_in_their_module():
    bad = [f"{p.relative_to(PKG_DIR.parent)}:{line}" for p in _modules()
           if p.relative_to(PKG_DIR.parent) != FORMULATION_HOME for line in formulation_comparisons(p.read_text())]
    assert not bad, ("a formulation is switched on outside features/formulations.py (give the Formulation a "
                     "method instead):\n" + "\n".join(bad))


def test_trunks_are_built_only_by_trunk_config():
    bad = [f"{p.relative_to(PKG_DIR.parent)}:{line}" for p in _modules() if _owner(p) != "trunk"
           for line in trunk_constructions(p.read_text())]
    assert not bad, "VGG16Trunk(...) outside trunk/: build it with TrunkConfig(...).build(weights):\n" + "\n".join(bad)


def test_the_owner_checks_catch_violations():
    assert formulation_comparisons("if v.formulation == 'paper':\n    pass\n") == [1]
    assert formulation_comparisons("x = formulation in ('stats', 'texture')\n") == [1]
    assert formulation_comparisons("ok = self.formulation.name\nif name == 'paper':\n    pass\n") == []
    assert trunk_constructions("t = VGG16Trunk(weights=None, pooling='max')\nu = vgg16.VGG16Trunk()\n") == [1, 2]
    assert trunk_constructions("t = TrunkConfig(pooling='max').build(None)\n") == []


def test_no_module_over_700_lines():
    big = [f"{p.relative_to(PKG_DIR.parent)} ({p.read_text().count(chr(10))} lines)" for p in _modules()
           if p.read_text().count("\n") > 700]
    assert not big, big


def test_the_checker_catches_a_violation(tmp_path):
    """The import parser resolves relative imports, so a study importing another study is seen."""
    study = tmp_path / "invariant_lpips" / "robustness"
    study.mkdir(parents=True)
    f = study / "bad.py"
    f.write_text("from ..benchmarks import runner\nimport invariant_lpips.calibration.fit\n")
    global PKG_DIR
    saved = PKG_DIR
    PKG_DIR = tmp_path / "invariant_lpips"
    try:
        mods = [m for _, m in _imports(f, module_level_only=False)]
    finally:
        PKG_DIR = saved
    assert [_subpackage(m) for m in mods] == ["benchmarks", "calibration"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
