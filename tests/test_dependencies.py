"""A plain ``pip install .`` must give working commands.

Every third-party module that tfsal, serving or training import — at module level
or inside functions — must belong to a distribution that setup.py's
``install_requires`` declares; test-only peers (pysaliency, scikit-image, ...) stay
in the ``test`` extra.
"""

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tfsal", "serving", "training")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _install_requires() -> set[str]:
    """The distribution names of setup.py's install_requires, read with ast."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "install_requires":
            requirements = ast.literal_eval(node.value)
            return {_canonical(re.match(r"[A-Za-z0-9_.-]+", item).group()) for item in requirements}
    raise AssertionError("setup.py has no install_requires")


def _imports(path: Path) -> set[str]:
    """Top-level names of the absolute imports anywhere in a module."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
        elif _is_import_module_call(node):
            names.add(node.args[0].value.partition(".")[0])
    return names


def _is_import_module_call(node: ast.AST) -> bool:
    """``importlib.import_module("name")`` or ``import_module("name")`` with a constant."""
    if not (isinstance(node, ast.Call) and node.args):
        return False
    function = node.func
    name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
    first = node.args[0]
    return (
        name == "import_module"
        and isinstance(first, ast.Constant)
        and isinstance(first.value, str)
        and not first.value.startswith(".")
    )


def third_party_imports() -> dict[str, set[str]]:
    """Imported third-party top-level module -> the files importing it."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in _imports(path):
                if name in sys.stdlib_module_names or name in PACKAGES:
                    continue
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_runtime_import_is_an_install_requirement():
    required = _install_requires()
    providers = importlib.metadata.packages_distributions()
    undeclared = {}
    for module, files in sorted(third_party_imports().items()):
        distributions = {_canonical(name) for name in providers.get(module, [])}
        if not distributions & required:
            undeclared[module] = (sorted(distributions) or ["not installed"], sorted(files))
    assert not undeclared, (
        "modules imported at run time but not in setup.py's install_requires "
        f"(module: distributions, files): {undeclared}"
    )


def test_the_walker_sees_function_level_imports(tmp_path):
    module = tmp_path / "example.py"
    module.write_text(
        "import os\n\ndef f():\n    import skimage.color\n    from yaml import safe_load\n"
        "    importlib.import_module('pysaliency.metrics')\n"
    )
    assert _imports(module) == {"os", "skimage", "yaml", "pysaliency"}
