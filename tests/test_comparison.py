import pytest
import torch
from typer.testing import CliRunner

from cli.main import app
from skeleton.core.config import CompareConfig, CompressConfig
from skeleton.core.data import DataConfig
from skeleton.core.modeling import load_prompt_and_head
from skeleton.core.reports import CompareReport
from skeleton.core.scores_and_plans import NeuronScores
from skeleton.core.workspace import ModelConfig, Workspace
from skeleton.method.planning import Planner
from tests.helpers import tiny_cli_options

runner = CliRunner()


def _common(tiny_bert_dir, sst2_dir):
    return [*tiny_cli_options(tiny_bert_dir, sst2_dir), "--train-samples", "96"]


def test_compare_writes_one_row_per_scorer_that_a_rerun_of_its_pruning_reproduces(tmp_path, tiny_bert_dir, sst2_dir):
    common = [str(a) for a in _common(tiny_bert_dir, sst2_dir)]
    tuned = runner.invoke(app, ["tune", *common, "--steps", "6", "--output", str(tmp_path / "prompt")])
    assert tuned.exit_code == 0, tuned.output
    args = ["compare", *common, "--prompt", str(tmp_path / "prompt"), "--round-to", "4"]
    args += ["--scorers", "attribution,random,skill,lca", "--ratio", "0.5", "--skill-prompts", "2", "--steps", "3"]
    args += ["--condense-steps", "3", "--output", str(tmp_path / "cmp")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = tmp_path / "cmp"
    report = CompareReport.load(out / "compare.json")
    assert [row["scorer"] for row in report.rows] == ["attribution", "random", "skill", "lca"]
    assert (out / "compare.png").stat().st_size > 0
    assert not (tmp_path / ".cmp.partial").exists()
    markdown = (out / "compare.md").read_text()
    for name in ("attribution", "random", "skill", "lca", "prompt-tuned", "majority class"):
        assert f"| {name}" in markdown
    assert report.rows[2]["details"]["prompts"] == 2  # the run's prompt and one from seed 43
    assert (out / "skill_prompts" / "skill-prompt-seed43-steps3" / "prompt").is_dir()

    # each row's "before condensation" figure is what pruning the same model with its saved scores gives
    config = CompressConfig(
        data=DataConfig("sst2", str(sst2_dir), validation_rows="all", train_samples=96),
        model=ModelConfig(model=str(tiny_bert_dir), num_virtual_tokens=4),
        round_to=4,
    )
    workspace = Workspace(config.data, config.model)
    classifier = load_prompt_and_head(
        workspace.load_backbone(), workspace.tokenizer, workspace.spec, tmp_path / "prompt"
    )
    assert report.prompt_tuned == workspace.evaluate_splits(classifier, torch.device("cpu"))
    for row in report.rows:
        scores = NeuronScores.load(out / f"scores_{row['scorer']}.safetensors")
        pruned, plan = Planner(scores, config).prune(classifier, 0.5)
        assert plan.kept_fraction == pytest.approx(row["kept_fraction"])
        assert workspace.evaluate_splits(pruned, torch.device("cpu")) == row["before_condensation"]
        assert set(row["after_condensation"]) == {"validation", "test"}

    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.output


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"scorers": ("attribution", "magic")}, "scorers must be among"),
        ({"scorers": ("lca", "lca")}, "must not repeat"),
        ({"kept_ratio": 1.0}, "kept_ratio must lie strictly between 0 and 1"),
    ],
)
def test_compare_config_checks(overrides, message):
    with pytest.raises(ValueError, match=message):
        CompareConfig(**overrides)


def test_the_default_scorer_list_is_the_registry():
    from skeleton.core.config import SCORERS
    from skeleton.method.scoring import REGISTRY

    assert SCORERS == tuple(REGISTRY)  # config.py stays free of torch, so it names them again


def test_bad_scorer_list_is_one_line_and_exit_2():
    result = runner.invoke(app, ["compare", "--scorers", "attribution,magic", "--quiet"])
    assert result.exit_code == 2 and "scorers must be among" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_compare_tunes_the_prompt_when_none_is_given_and_keeps_it(tmp_path, tiny_bert_dir, sst2_dir):
    args = [
        "compare",
        *_common(tiny_bert_dir, sst2_dir),
        "--steps",
        "4",
        "--scorers",
        "random",
        "--no-after-condensation",
    ]
    result = runner.invoke(app, [*args, "--round-to", "4", "--output", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    report = CompareReport.load(tmp_path / "cmp" / "compare.json")
    # tuned now (a given prompt has no tuning time) and kept beside the report
    assert report.prompt_tuning_seconds is not None and (tmp_path / "cmp" / "prompt_tuned" / "prompt").is_dir()
    assert "after_condensation" not in report.rows[0]
    # the kept prompt is the one every scorer pruned: its evaluation is the report's
    workspace = Workspace(
        DataConfig("sst2", str(sst2_dir), validation_rows="all", train_samples=96),
        ModelConfig(model=str(tiny_bert_dir), num_virtual_tokens=4),
    )
    kept = load_prompt_and_head(
        workspace.load_backbone(), workspace.tokenizer, workspace.spec, tmp_path / "cmp" / "prompt_tuned"
    )
    assert workspace.evaluate_splits(kept, torch.device("cpu")) == report.prompt_tuned
