import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.helpers import tiny_cli_options

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tune", "--task", "sst3"], "unknown task 'sst3'; known tasks: ag_news, cb, imdb, mrpc, sst2"),
        (["tune", "--data-dir", "/nonexistent/dir"], "data directory not found: /nonexistent/dir"),
        (["tune", "--model", "./no/such/model"], "model path not found"),
        (["tune", "--train-samples", "0"], "train_samples must be a positive number"),
        (["compress", "--targets", "attention"], "targets must include ffn"),
        (["compress", "--scorer", "magic"], "unknown scorer 'magic'; choose one of attribution"),
        (["tune", "--prompt-init", "zeros"], "prompt_init must be text or random"),
        (["tune", "--device", "tpu"], "unknown device 'tpu'"),
        (["compress", "--target-speedup", "0.8"], "target_speedup must exceed 1, got 0.8"),
        (
            ["compress", "--tune", "prompt", "--condensed-prompt-tokens", "0"],
            "condensed_prompt_tokens must lie in 1..20",
        ),
        (["compress", "--condensed-prompt-tokens", "4"], "condensed_prompt_tokens needs a soft prompt"),
        (["compress", "--tune", "prompt", "--prompt-tokens", "0"], "tune prompt trains the soft prompt"),
        (["compress", "--tune", "full", "--scorer", "skill"], "the skill scorer reads soft-prompt positions"),
        (["compress", "--targets", "ffn,ffn-out,heads"], "targets ffn-out cannot be combined with heads"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = _run(*args, "--quiet")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_malformed_row_is_reported_with_file_and_line(tmp_path):
    folder = tmp_path / "sst2"
    folder.mkdir()
    (folder / "train.tsv").write_text("sentence\tlabel\ngood\t1\nbad\t0\t9\n")
    (folder / "dev.tsv").write_text("sentence\tlabel\ngood\t1\n")
    result = _run("tune", "--data-dir", folder, "--quiet")
    assert result.exit_code == 2
    assert f"{folder / 'train.tsv'}:3: malformed row" in result.output


def test_tune_and_compress_run_and_print_summaries(tmp_path, tiny_bert_dir, sst2_dir):
    common = tiny_cli_options(tiny_bert_dir, sst2_dir)
    result = _run("tune", *common, "--train-samples", "64", "--output", tmp_path / "prompt")
    assert result.exit_code == 0, result.output
    assert "validation" in result.output and "tuned model saved to" in result.output
    result = _run(
        "compress",
        *common,
        "--prompt",
        tmp_path / "prompt",
        "--max-trials",
        "2",
        "--round-to",
        "4",
        "--condense-epochs",
        "0.5",
        *("--targets", "ffn", "--condense", "prompt"),  # the paper's mode; the default search is tested apart
        "--no-export",
        "--output",
        tmp_path / "slim",
    )
    assert result.exit_code == 0, result.output
    assert "search over the kept ratio" in result.output and "removed" in result.output
    report = json.loads((tmp_path / "slim" / "report.json").read_text())
    assert len(report["search"]["trials"]) <= 2
    # an existing output is not overwritten without --overwrite
    again = _run("compress", *common, "--prompt", tmp_path / "prompt", "--no-export", "--output", tmp_path / "slim")
    assert again.exit_code == 2 and "already exists" in again.output


def test_tasks_lists_the_registry():
    result = _run("tasks")
    assert result.exit_code == 0
    for name in ("sst2", "mrpc", "ag_news", "imdb", "cb"):
        assert name in result.output


def test_export_and_predict_commands(tmp_path, tokenizer_dir, sst2_dir):
    from tests.test_export import make_compressed_dir

    directory, _ = make_compressed_dir(tmp_path, "bert", "cls", tokenizer_dir, sst2_dir)
    result = _run("export", directory, "--variants", "fp32,optimized", "--quiet")
    assert result.exit_code == 0, result.output
    assert "default variant" in result.output and "truncated" in result.output

    texts = tmp_path / "texts.txt"
    texts.write_text("the movie was great\nawful plot\n\n")
    result = _run("predict", directory, "a superb film", "--file", texts, "--json", "--variant", "fp32")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.strip().splitlines()]
    assert [row["text"] for row in rows] == ["a superb film", "the movie was great", "awful plot"]
    # the command prints what the library predicts, label and probability
    from skeleton.deploy.predictor import Predictor

    expected = Predictor(directory, variant="fp32").predict(["a superb film", "the movie was great", "awful plot"])
    assert [row["label"] for row in rows] == [label for label, _ in expected]
    assert [row["score"] for row in rows] == pytest.approx([score for _, score in expected], abs=1e-6)

    for args, message in (
        (["predict", directory], "no texts"),
        (["predict", directory, "x", "--variant", "int8"], "variant 'int8' was not exported"),
        (["predict", tmp_path / "nowhere", "x"], "directory not found"),
        (["predict", directory, "--file", tmp_path / "none.txt"], "text file not found"),
        (["export", tmp_path], "not a compressed model directory"),
    ):
        failed = _run(*args)
        assert failed.exit_code == 2 and message in failed.output, failed.output


@pytest.mark.parametrize(
    ("command", "module", "function", "config_class"),
    [
        ("compress", "skeleton.compression", "compress", "CompressConfig"),
        ("tune", "skeleton.method.tuning", "tune", "TuneConfig"),
    ],
)
@pytest.mark.parametrize("task", ["sst2", "mrpc"])
def test_cli_defaults_are_the_library_defaults(monkeypatch, command, module, function, config_class, task):
    """`skeleton compress --task T` runs exactly CompressConfig(DataConfig(T)) (and tune, TuneConfig()),
    task recipe included."""
    import importlib

    import skeleton.core.config
    from skeleton.core.errors import SkeletonError

    captured = []

    def capture(config, reporter=None):
        captured.append(config)
        raise SkeletonError("captured")

    monkeypatch.setattr(importlib.import_module(module), function, capture)
    result = _run(command, "--task", task, "--quiet")
    assert result.exit_code == 2 and "captured" in result.output
    library = getattr(skeleton.core.config, config_class)(data=skeleton.core.config.DataConfig(task))
    assert [c.resolved() for c in captured] == [library.resolved()]


def test_an_option_given_wins_over_the_task_recipe():
    from cli.main import train_config
    from skeleton.core.config import TrainConfig
    from skeleton.core.tasks import TASKS

    recipe = train_config("mrpc", "tune", {"trains": "prompt"})
    assert recipe == TrainConfig(**TASKS["mrpc"].tune) and recipe.steps is not None
    # the default kind (a tuned backbone) keeps the recipe's step budget over its own rates (MRPC's: lr 1e-4)
    tuned = train_config("mrpc", "tune", {})
    assert (tuned.trains, tuned.steps, tuned.backbone_lr, tuned.head_init) == ("full", recipe.steps, 1e-4, "random")
    # epochs asked for replace the recipe's step budget; options not given keep the recipe's values
    given = train_config("mrpc", "tune", {"trains": "prompt", "epochs": 2.0, "lr": 0.5, "head_lr": None})
    assert (given.epochs, given.steps, given.lr, given.head_lr) == (2.0, None, 0.5, recipe.head_lr)
    assert train_config("mrpc", "tune", {"epochs": 2.0, "steps": 10}).steps == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bench", "/nonexistent/model"], "has no onnx/: run 'skeleton export"),
        (["bench", ".", "--batch-sizes", "1,x"], "--batch-sizes takes comma-separated whole numbers, got '1,x'"),
        (["bench", ".", "--runtimes", "tensorrt"], "runtimes must be among"),
        (["bench", ".", "--threads", "0"], "threads must be at least 1"),
    ],
)
def test_bench_bad_input_is_one_line_and_exit_2(args, message):
    result = _run(*args, "--quiet")
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_every_option_from_a_config_has_its_help():
    """tune's and compress's options take their help from the config docstrings: none may lack one."""
    from cli import main
    from cli.options import field_help

    groups = (
        "DATA_OPTIONS",
        "MODEL_OPTIONS",
        "TRAIN_OPTIONS",
        "CONDENSE_OPTIONS",
        "SEARCH_OPTIONS",
        "COMPRESS_OPTIONS",
    )
    for option in [option for group in groups for option in getattr(main, group)]:
        assert len(field_help(option.cls).get(option.field, "")) > 10, option
