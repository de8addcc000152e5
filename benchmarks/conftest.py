"""Fixtures for the pytest-benchmark suites: the packaged default model (all-MiniLM-L6-v2), pruned to
30% of its FFN neurons by random scores and exported, and a few real-looking sentences.

Speed does not depend on what the prompt learned, so nothing is trained here; run with
``pytest benchmarks/ --benchmark-only`` (not part of the CI test command).
"""

from __future__ import annotations

import pytest
import torch

SENTENCES = [
    "a gripping, funny and deeply humane film",
    "the plot drags and the acting is wooden",
    "one of the most beautiful movies of the year, with a score to match",
    "i could not wait for it to end",
] * 8


def _sst2_dir(root):
    folder = root / "sst2"
    folder.mkdir()
    rows = ["sentence\tlabel"] + [f"{text}\t{i % 2}" for i, text in enumerate(SENTENCES * 4)]
    for name in ("train.tsv", "dev.tsv"):
        (folder / name).write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    from skeleton.core.data import DataConfig
    from skeleton.core.workspace import ModelConfig, Workspace

    # four sentences repeated: a plain random hold-out (whole-row validation would leave no training row)
    folder = str(_sst2_dir(tmp_path_factory.mktemp("data")))
    return Workspace(DataConfig("sst2", folder, validation_rows="all"), ModelConfig())


@pytest.fixture(scope="session")
def classifier(workspace):
    return workspace.new_classifier().eval()


@pytest.fixture(scope="session")
def slim_dir(tmp_path_factory, workspace):
    """The default model with 30% of its FFN neurons (random ranking), saved and exported."""
    from skeleton.core.config import ExportConfig
    from skeleton.core.outputs import save_classifier
    from skeleton.core.scores_and_plans import NeuronScores
    from skeleton.deploy.export import export_directory
    from skeleton.method.pruning import apply_pruning, make_plan
    from skeleton.method.tuning import skeleton_meta

    classifier = workspace.new_classifier().eval()
    generator = torch.Generator().manual_seed(0)
    scores = NeuronScores("random", [torch.rand(1536, generator=generator) for _ in range(6)], [torch.zeros(1536)] * 6)
    plan = make_plan(scores, 0.3, hidden_size=384, model_type="bert", round_to=8)
    apply_pruning(classifier.backbone, plan)
    out = tmp_path_factory.mktemp("slim") / "model"
    save_classifier(classifier, workspace.tokenizer, out, plan, skeleton_meta(workspace))
    export_directory(out, ExportConfig(int8_kinds=("dynamic",), int8_bar=False), workspace=workspace)
    return out
