import json

import pytest
import torch
from typer.testing import CliRunner

import skeleton
from cli.main import app
from skeleton.compression import compress
from skeleton.core.architectures import ffn_layers
from skeleton.core.config import AnalyzeConfig
from skeleton.core.data import DataConfig
from skeleton.core.reports import AnalysisReport
from skeleton.measure.analysis import spearman, suppressed, top_masks
from skeleton.method.search import SearchConfig
from skeleton.method.tuning import TrainConfig
from tests.conftest import synthetic_rows
from tests.helpers import random_inputs, tiny_classifier, tiny_cli_options, tiny_compress_config

runner = CliRunner()


def test_top_masks_by_hand():
    scores = [torch.tensor([0.1, 0.9, 0.3]), torch.tensor([0.8, 0.2, 0.9])]
    masks = top_masks(scores, 3)
    # the top three over both layers: 0.9 (layer 0, #1), 0.9 (layer 1, #2), 0.8 (layer 1, #0)
    assert masks[0].tolist() == [False, True, False] and masks[1].tolist() == [True, False, True]
    assert [m.sum().item() for m in top_masks(scores, 0)] == [0, 0]


def test_suppressing_a_neuron_equals_cutting_its_row_by_hand(tokenizer, tokenizer_dir):
    """Zeroing neurons' activations equals zeroing their rows of the first FFN linear (GELU(0) = 0)."""
    classifier = tiny_classifier("bert", tokenizer, tokenizer_dir)
    inputs = random_inputs()
    masks = [torch.zeros(64, dtype=torch.bool), torch.zeros(64, dtype=torch.bool)]
    masks[0][[3, 10]] = True
    masks[1][[0]] = True
    with torch.no_grad():
        before = classifier(**inputs)
        with suppressed(classifier, masks):
            zeroed = classifier(**inputs)
        after = classifier(**inputs)  # the hooks are gone
        for layer, mask in zip(ffn_layers(classifier.backbone), masks, strict=True):
            layer.ffn_in.weight[mask] = 0
            layer.ffn_in.bias[mask] = 0
        cut = classifier(**inputs)
    torch.testing.assert_close(zeroed, cut)
    torch.testing.assert_close(before, after)
    assert not torch.allclose(before, zeroed)


def test_spearman_by_hand():
    assert spearman(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, 20.0, 30.0])) == pytest.approx(1.0)
    assert spearman(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    # ranks (1, 2, 3, 4) against (2, 1, 4, 3): 1 - 6 * 4 / (4 * 15) = 0.6
    assert spearman(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([2.0, 1.0, 4.0, 3.0])) == pytest.approx(0.6)


def test_analyze_a_compressed_directory(tmp_path, tiny_bert_dir, sst2_dir):
    config = tiny_compress_config(
        tmp_path / "run",
        tiny_bert_dir,
        sst2_dir,
        data=DataConfig("sst2", str(sst2_dir), validation_rows="all", train_samples=120),
        tune=TrainConfig(steps=20, batch_size=16, lr=5e-2, head_lr=5e-2, evals_per_epoch=1),
        condense=TrainConfig(steps=3, batch_size=16, lr=5e-2, head_lr=5e-2, evals_per_epoch=1),
        search=SearchConfig(margin=100.0, max_trials=1),
        allow_weak_prior=True,
    )
    compress(config)
    rows = synthetic_rows(30, seed=9)
    extra = tmp_path / "shifted.tsv"
    extra.write_text("sentence\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows))
    args = ["analyze", str(tmp_path / "run"), "--scorers", "attribution,skill,lca", "--skill-prompts", "1"]
    args += ["--percents", "5,20", "--top-percent", "10", "--data", str(extra), "--quiet", "--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "run" / "analysis"
    report = AnalysisReport.load(folder / "analysis.json")
    for name in ("analysis.md", "suppression.png", "layers.png"):
        assert (folder / name).stat().st_size > 0
    assert set(report.suppression) == {"attribution", "skill", "lca", "random"}
    for points in report.suppression.values():
        assert [p["neurons"] for p in points] == [0, 6, 26]  # 5% and 20% of 128 neurons, rounded
        assert points[0]["validation_accuracy"] == report.prompt_tuned_validation_accuracy
    for shares in report.top_neurons_per_layer.values():
        assert sum(shares) == pytest.approx(1.0)
    assert (
        report.skeleton_kept["kept_sizes"]
        == json.loads((tmp_path / "run" / "pruning_plan.json").read_text())["kept_sizes"]
    )
    for name in ("attribution", "skill", "lca"):
        assert report.spearman[name][name] == pytest.approx(1.0)
    assert "random" not in report.spearman  # the baseline curve is not one of the scorers asked for
    # the extra file's accuracy by hand, from the slim model's own predictions
    model = skeleton.load(tmp_path / "run", device="cpu")
    predicted = [model.spec.label_names.index(label) for label, _ in model.predict([text for text, _ in rows])]
    by_hand = 100 * sum(p == label for p, (_, label) in zip(predicted, rows, strict=True)) / len(rows)
    assert report.extra_data["shifted.tsv"]["skeleton"]["accuracy"] == pytest.approx(by_hand)
    assert report.extra_data["shifted.tsv"]["rows"] == 30
    # the run's own scorer is read from its scores file, not recomputed
    assert report.run_scorer == "attribution"

    # scores a 'skeleton compare' run saved for the same prompt-tuned model are reused as they are
    common = [
        *tiny_cli_options(tiny_bert_dir, sst2_dir),
        "--train-samples",
        "120",
        "--round-to",
        "4",
        "--no-after-condensation",
    ]
    compared = runner.invoke(
        app,
        ["compare", *common, "--prompt", str(tmp_path / "run" / "prompt_tuned"), "--scorers", "lca"]
        + ["--output", str(tmp_path / "cmp")],
    )
    assert compared.exit_code == 0, compared.output
    again = runner.invoke(app, [*args, "--scores-from", str(tmp_path / "cmp")])
    assert again.exit_code == 0, again.output
    reused = AnalysisReport.load(folder / "analysis.json")
    assert reused.suppression["lca"] == report.suppression["lca"]
    assert (
        reused.scoring_seconds["lca"]
        == json.loads((tmp_path / "cmp" / "compare.json").read_text())["rows"][0]["scoring_seconds"]
    )
    other = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    other["prompt_fingerprint"] = "0" * 16
    (tmp_path / "cmp" / "compare.json").write_text(json.dumps(other))
    refused = runner.invoke(app, [*args, "--scores-from", str(tmp_path / "cmp")])
    assert refused.exit_code == 2 and "of another prompt-tuned model" in refused.output

    missing = runner.invoke(app, ["analyze", str(tmp_path / "run"), "--data", str(tmp_path / "nope.tsv"), "--quiet"])
    assert missing.exit_code == 2 and "no such file" in missing.output and "Traceback" not in missing.output


def test_analyze_refuses_other_directories_and_bad_settings(tmp_path):
    result = runner.invoke(app, ["analyze", str(tmp_path), "--quiet"])
    assert result.exit_code == 2 and "not a directory written by 'skeleton compress'" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(app, ["analyze", str(tmp_path), "--percents", "5,x", "--quiet"])
    assert result.exit_code == 2 and "--percents takes comma-separated numbers" in result.output
    with pytest.raises(ValueError, match="suppression_percents must lie strictly between 0 and 100"):
        AnalyzeConfig(suppression_percents=(0, 5))
