"""The import graph of tfsal, serving and training: one way, no circles.

Dependencies run ``training`` -> ``serving`` -> ``tfsal``; no module imports itself
back through others (imports inside functions included, since they only hide a
circle until the function runs); training and serving reach a model family through
the registry (``tfsal.models``), never through the family's own modules.

Edges are the explicit imports of each module: ``import a.b`` and ``from a import
b`` lead to ``a.b`` when it is a module, else to ``a``; ``importlib.import_module``
with a constant name counts too. The parent packages Python runs on the way are not
edges (every package ``__init__`` importing its children would otherwise make a
circle of every sibling import).
"""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tfsal", "serving", "training")
LAYER = {"tfsal": 0, "serving": 1, "training": 2}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


MODULES = _modules()


def _target(name: str) -> str | None:
    """The internal module an import of ``name`` loads, or None if external."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> dict[str, int]:
    """Returns ``{imported internal module: first line}`` of one module."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: dict[str, int] = {}

    def add(name: str, line: int) -> None:
        target = _target(name)
        if target is not None and target != module:
            found.setdefault(target, line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in MODULES else base, node.lineno)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            add(node.args[0].value, node.lineno)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def _family_packages() -> set[str]:
    models = ROOT / "tfsal" / "models"
    return {f"tfsal.models.{p.parent.name}" for p in models.glob("*/__init__.py")}


def test_the_walker_sees_function_level_and_relative_imports(tmp_path):
    assert "tfsal.models.registry" in GRAPH["tfsal.models"]
    assert "tfsal.metrics.keras_metrics" in GRAPH["tfsal.metrics"]  # importlib, lazily
    assert len(_family_packages()) >= 3


def test_no_import_circles():
    circles = []
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for imported in GRAPH[module]:
            if state.get(imported) == "open":
                circles.append(stack[stack.index(imported) :] + [imported])
            elif imported not in state:
                visit(imported)
        stack.pop()
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_dependencies_run_training_serving_tfsal():
    wrong = [
        f"{module} imports {imported} (line {line})"
        for module, imported_lines in GRAPH.items()
        for imported, line in imported_lines.items()
        if LAYER[imported.split(".")[0]] > LAYER[module.split(".")[0]]
    ]
    assert not wrong, "\n".join(wrong)


def test_training_and_serving_reach_model_families_only_through_the_registry():
    families = _family_packages()
    wrong = [
        f"{module} imports {imported} (line {line})"
        for module, imported_lines in GRAPH.items()
        if module.split(".")[0] in ("serving", "training")
        for imported, line in imported_lines.items()
        if any(imported == family or imported.startswith(family + ".") for family in families)
    ]
    assert not wrong, "\n".join(wrong)


def _code_strings(tree: ast.AST):
    """String constants of a module's code: docstrings left out."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        is_string = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if is_string and id(node) not in docstrings:
            yield node


def test_only_the_training_recipes_name_a_model_family():
    # Facts about a model live in its registration (tfsal.models.ModelInfo); the
    # per-model training recipes in training/recipes.py (and the default model of a
    # run in training/fit_config.py) are the one exception.
    families = {family.rpartition(".")[2] for family in _family_packages()}
    recipe_modules = ("training.recipes", "training.fit_config")
    wrong = []
    for module, path in MODULES.items():
        if module.split(".")[0] not in ("serving", "training") or module in recipe_modules:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _code_strings(tree):
            if node.value.strip().lower() in families:
                wrong.append(f"{module}:{node.lineno} names {node.value!r}")
    assert not wrong, "\n".join(wrong)


def test_private_keras_apis_are_touched_in_one_module():
    allowed = "training.keras_private"
    private_methods = ("_symbolic_build", "_maybe_symbolic_build")
    wrong = []
    for module, path in MODULES.items():
        if module == allowed:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.Attribute):
                names = [node.attr]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [node.value]
            for name in names:
                if name.startswith("keras.src") or name in private_methods:
                    wrong.append(f"{module}:{node.lineno} uses {name}")
    assert not wrong, "\n".join(wrong)


FIRST_IMPORTS = (
    "tfsal.weights",
    "tfsal.weights.mobilenet_v2",
    "tfsal.weights.unisal",
    "tfsal.weights.msinet",
    "tfsal.models.unisal.encoder",
    "tfsal.models.msinet.architecture",
    "tfsal.models",
)


@pytest.mark.slow
def test_any_module_can_be_imported_first():
    # Model families and their weight import meet again through package __init__
    # files; whichever side is imported first, the other must still load. One fresh
    # process tries every order, forgetting tfsal (and its Keras registrations) between.
    code = f"""
import importlib, sys
import keras
for first in {FIRST_IMPORTS!r}:
    for name in [m for m in sys.modules if m.split(".")[0] == "tfsal"]:
        del sys.modules[name]
    registered = keras.saving.get_custom_objects()
    for key in [k for k in registered if k.startswith("tfsal>")]:
        del registered[key]
    importlib.import_module(first)
    import tfsal.models, tfsal.weights
    assert {{"cmrnet", "msinet", "unisal"}} <= set(tfsal.models.list_models()), first
    assert callable(tfsal.weights.load_unisal_weights), first
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_every_module_imports():
    for module in sorted(MODULES):
        if not module.endswith("__main__"):
            importlib.import_module(module)
