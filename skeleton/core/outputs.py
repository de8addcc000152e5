"""What a run writes: output directories written under a temporary name and renamed into place on
success, the library versions a report records, and a prompted classifier saved as a model
directory (slim backbone, pruning plan, prompt, head, tokenizer, ``skeleton.json``).
"""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from safetensors.torch import save_model
from transformers import PreTrainedTokenizerBase

from skeleton.core.errors import SkeletonError
from skeleton.core.file_names import META_FILE, MODEL_FILE, PLAN_FILE
from skeleton.core.modeling import PromptedClassifier, save_prompt_and_head
from skeleton.core.reports import ModelMeta
from skeleton.core.scores_and_plans import PruningPlan


def library_versions() -> dict[str, str]:
    names = ("torch", "transformers", "peft", "datasets", "optimum", "onnxruntime", "onnx")
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        versions["skeleton"] = importlib.metadata.version("skeleton")
    except importlib.metadata.PackageNotFoundError:
        versions["skeleton"] = "source"
    commit = source_commit()
    if commit:
        versions["skeleton_commit"] = commit
    return versions


def source_commit() -> str | None:
    """The git commit the package runs from (``+changes`` when its files differ from it), or ``None``
    outside a git checkout: what labels a result with its code version."""
    source = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5
        )
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "."], cwd=source, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0:
        return None
    return commit.stdout.strip() + ("+changes" if changed.stdout.strip() else "")


def partial_path(final: Path) -> Path:
    return final.parent / f".{final.name}.partial"


@contextmanager
def atomic_directory(final: Path, overwrite: bool = False, resume: bool = False) -> Iterator[Path]:
    """Yield a hidden working directory beside ``final``; rename it to ``final`` on success.

    On failure or Ctrl-C the working directory stays (hidden, for ``--resume``), and ``final`` is
    untouched: there is never a half-written model under the name the user asked for.
    """
    final = Path(final)
    if final.exists() and not overwrite:
        raise SkeletonError(f"output directory {final} already exists; pass --overwrite to replace it")
    work = partial_path(final)
    if work.exists() and not resume:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    yield work
    if final.exists():
        old = final.parent / f".{final.name}.old"
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
        work.rename(final)
        shutil.rmtree(old)
    else:
        work.rename(final)


def save_classifier(
    classifier: PromptedClassifier,
    tokenizer: PreTrainedTokenizerBase,
    directory: Path,
    plan: PruningPlan | None,
    meta: ModelMeta,
) -> None:
    """Save the (slim) backbone, its plan, the prompt and head, the tokenizer and ``skeleton.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    backbone = classifier.backbone
    backbone.config.save_pretrained(str(directory))
    save_model(backbone, str(directory / MODEL_FILE))  # handles tied (shared) weights
    if plan is not None:
        plan.save(directory / PLAN_FILE)
    save_prompt_and_head(classifier, directory)
    tokenizer.save_pretrained(str(directory))
    meta.save(directory / META_FILE)
