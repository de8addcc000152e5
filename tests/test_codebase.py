"""The codebase's shape: where family facts live, how long a function may grow."""

import ast
import re
from pathlib import Path

from skeleton.architectures import ARCHITECTURES, MLM_HEADS

ROOT = Path(__file__).parents[1]
SOURCES = sorted([*(ROOT / "skeleton").glob("*.py"), *(ROOT / "cli").glob("*.py")])


def test_no_family_fact_outside_the_architecture_table():
    """Family names, Hugging Face class names and module paths live in skeleton/architectures.py only."""
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
        assert not found, f"{file.relative_to(ROOT)} names {sorted(set(found))}: move it into skeleton/architectures.py"


def test_no_function_is_longer_than_60_lines():
    """A function a reader cannot see whole is split into named steps."""
    long = [
        f"{file.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for file in SOURCES
        if file.parent.name == "skeleton"
        for node in ast.walk(ast.parse(file.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 60
    ]
    assert not long, long
