import json

import pytest
from typer.testing import CliRunner

from cli.main import app

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
    common = [
        "--model",
        tiny_bert_dir,
        "--data-dir",
        sst2_dir,
        "--prompt-tokens",
        "4",
        "--device",
        "cpu",
        "--quiet",
    ]
    result = _run("tune", *common, "--train-samples", "64", "--output", tmp_path / "prompt")
    assert result.exit_code == 0, result.output
    assert "validation" in result.output and "prompt saved to" in result.output
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
        "--no-export",
        "--output",
        tmp_path / "slim",
    )
    assert result.exit_code == 0, result.output
    assert "kept-ratio search" in result.output and "removed" in result.output
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
