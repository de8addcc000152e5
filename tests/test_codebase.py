"""The codebase's shape: the layers and their imports, where family facts live, how long a function may grow."""

import ast
import re
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from skeleton.core.architectures import ARCHITECTURES, MLM_HEADS

ROOT = Path(__file__).parents[1]
SOURCES = sorted([*(ROOT / "skeleton").rglob("*.py"), *(ROOT / "cli").rglob("*.py")])
# the package's layers, bottom up: a module imports only from its own layer and the ones below
LAYERS = ("core", "method", "deploy", "measure", "compression")


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path, known: set[str]) -> set[str]:
    """Every module of ``known`` that ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found & known


def _package_graph() -> dict[str, set[str]]:
    """The import graph of skeleton/: module -> the package modules it imports (package faces left out)."""
    files = {_module(path): path for path in (ROOT / "skeleton").rglob("*.py") if path.name != "__init__.py"}
    return {name: _imports(path, set(files)) - {name} for name, path in files.items()}


def _layer(module: str) -> int:
    return LAYERS.index(module.split(".")[1])


def test_every_module_sits_in_a_layer():
    """A new module goes into one of the layer folders (or is the top-level pipeline)."""
    for module in _package_graph():
        assert module.split(".")[1] in LAYERS, f"{module} is in no layer of {LAYERS}"


def test_the_import_graph_has_no_loop():
    """No import loop in skeleton/, whether the imports stand at the top of a file or inside a function."""
    try:
        TopologicalSorter(_package_graph()).prepare()
    except CycleError as error:
        pytest.fail(f"import loop: {' -> '.join(error.args[1])}")


def test_imports_only_run_down_the_layers():
    """core <- method <- deploy <- measure <- compression: nothing imports from a layer above its own."""
    upward = [
        f"{module} -> {target}"
        for module, targets in _package_graph().items()
        for target in sorted(targets)
        if _layer(target) > _layer(module)
    ]
    assert not upward, upward


def test_a_local_import_is_for_start_up_cost_only():
    """Inside the package, skeleton modules are imported at the top of a file, so the layering reads
    from the imports; the exceptions load a heavy library only when it is asked for: torch for the
    registry's PyTorch runtime (an ONNX or OpenVINO prediction needs no torch), and ``datasets`` (0.8 s
    to import here, against 0.14 s for the whole predictor) for a table given to predict or evaluate."""
    allowed = {
        ("skeleton/deploy/registry.py", "skeleton.deploy.loading"),
        ("skeleton/deploy/inputs.py", "skeleton.core.data"),
        ("skeleton/deploy/inputs.py", "skeleton.core.user_data"),
    }
    local = set()
    for path in (ROOT / "skeleton").rglob("*.py"):
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        local |= {
            (str(path.relative_to(ROOT)), node.module)
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and id(node) not in top and (node.module or "").startswith("skeleton")
        }
    assert local <= allowed, sorted(local - allowed)


def test_the_command_line_starts_without_torch():
    """``skeleton --help`` stays quick: the CLI module and the settings import no torch, transformers or onnxruntime."""
    code = (
        "import sys, cli.main; "
        "print(','.join(m for m in ('torch', 'transformers', 'onnxruntime', 'datasets') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert loaded.stdout.strip() == ""


def test_no_family_fact_outside_the_architecture_table():
    """Family names, Hugging Face class names and module paths live in skeleton/core/architectures.py only."""
    families = re.compile(r"\b(" + "|".join(re.escape(name) for name in ARCHITECTURES) + r")\b", re.IGNORECASE)
    classes = re.compile(r"\bAuto(Model|Config|Tokenizer)\w*|\b\w+For(MaskedLM|PreTraining|SequenceClassification)\b")
    paths = {
        getattr(spec, name)
        for spec in ARCHITECTURES.values()
        for name in ("layers", "ffn_in", "ffn_out", "attention_out")
    } | {path for heads in MLM_HEADS.values() for path in heads if "_" in path}
    for file in SOURCES:
        if file.name == "architectures.py":
            continue
        text = file.read_text()
        found = [m.group(0) for m in families.finditer(text)]
        # optimum's ORTModel classes are the export's consumers, not a model family
        found += [m.group(0) for m in classes.finditer(text) if not m.group(0).startswith("ORTModel")]
        found += [path for path in paths if f'"{path}"' in text or f"'{path}'" in text]
        where = "skeleton/core/architectures.py"
        assert not found, f"{file.relative_to(ROOT)} names {sorted(set(found))}: move it into {where}"


def test_no_function_is_longer_than_60_lines():
    """A function a reader cannot see whole is split into named steps."""
    long = [
        f"{file.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for file in SOURCES
        for node in ast.walk(ast.parse(file.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 60
    ]
    assert not long, long


def test_the_teacher_is_called_the_teacher():
    """The glossary (docs/architecture.md) says the model every comparison is against is the teacher and
    not the baseline: in the code, 'baseline' names only the scorers' baselines (the skill scorer's mean
    activation, the random scorer of the suppression curves)."""
    glossary = (ROOT / "docs" / "architecture.md").read_text()
    teacher_row = next(line for line in glossary.splitlines() if line.startswith("| teacher |"))
    assert "baseline" in teacher_row.split("|")[3]  # the "not called" cell
    scorer_sense = {"skeleton/method/skill.py", "skeleton/method/scoring.py", "skeleton/measure/analysis.py"}
    scorer_sense.add("skeleton/core/config.py")  # the skill and suppression settings' docstrings
    misnamed = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in SOURCES
        if str(path.relative_to(ROOT)) not in scorer_sense
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"baseline", line, re.IGNORECASE)
    ]
    assert not misnamed, misnamed
