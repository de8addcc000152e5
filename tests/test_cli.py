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
        (["tune", "--train-samples", "0"], "--train-samples must be a positive number"),
        (["compress", "--targets", "attention"], "--targets must include ffn"),
        (["compress", "--scorer", "magic"], "unknown scorer 'magic'; choose one of attribution"),
        (["tune", "--prompt-init", "zeros"], "--prompt-init must be text or random"),
        (["tune", "--device", "tpu"], "--device must be auto, cpu, cuda, cuda:N or mps, got 'tpu'"),
        (["compress", "--precision", "fp16"], "--precision must be one of auto, fp32, bf16, got 'fp16'"),
        (["tune", "--precision", "half"], "--precision must be one of auto, fp32, bf16, got 'half'"),
        (["compress", "--target-speedup", "0.8"], "--target-speedup must exceed 1, got 0.8"),
        (
            ["compress", "--tune", "prompt", "--condensed-prompt-tokens", "0"],
            "--condensed-prompt-tokens must lie in 1..20",
        ),
        (["compress", "--condensed-prompt-tokens", "4"], "--condensed-prompt-tokens needs a soft prompt"),
        (["compress", "--tune", "prompt", "--prompt-tokens", "0"], "tune prompt trains the soft prompt"),
        (["compress", "--tune", "full", "--scorer", "skill"], "the skill scorer reads soft-prompt positions"),
        (["compress", "--targets", "ffn,ffn-out,heads"], "targets ffn-out cannot be combined with heads"),
        (["compress", "--shapes", "1x16,big"], "--shapes takes positive batch x tokens pairs such as 1x16,32x128"),
        (["compress", "--shapes", "0x16"], "--shapes takes positive batch x tokens pairs"),
        (["compress", "--shapes", "1x16x2"], "--shapes takes positive batch x tokens pairs"),
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


def test_tasks_lists_the_registry_with_each_recipe(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line a task: the recipe is not wrapped
    result = _run("tasks")
    assert result.exit_code == 0
    for name in ("sst2", "mrpc", "ag_news", "imdb", "cb"):
        assert name in result.output
    mrpc = next(line for line in result.output.splitlines() if "│ mrpc" in line)
    assert "tune full steps=690" in mrpc and "condense full backbone_lr=0.0001" in mrpc


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tokenizer_dir, sst2_dir):
    """A tiny SST-2 model exported by the command (fp32 and optimized graphs)."""
    from tests.test_export import make_compressed_dir

    directory, _ = make_compressed_dir(tmp_path_factory.mktemp("cli"), "bert", "cls", tokenizer_dir, sst2_dir)
    result = _run("export", directory, "--variants", "fp32,optimized", "--quiet")
    assert result.exit_code == 0, result.output
    assert "default variant" in result.output and "truncated" in result.output
    return directory


def test_export_writes_every_graph_compress_writes_unless_told(tmp_path, monkeypatch):
    """Without --variants the command asks for the graphs compress exports, OpenVINO's included; with it, those."""
    import skeleton.deploy.export
    from skeleton.core.config import ExportConfig
    from skeleton.core.errors import SkeletonError

    asked = []

    def export_directory(directory, config, **_):
        asked.append(config.variants)
        raise SkeletonError("stopped before exporting")

    monkeypatch.setattr(skeleton.deploy.export, "export_directory", export_directory)
    assert _run("export", tmp_path).exit_code == 2
    assert _run("export", tmp_path, "--variants", "fp32, int8").exit_code == 2
    assert asked == [ExportConfig().variants, ("fp32", "int8")]
    assert {"openvino-fp32", "openvino-int8"} <= set(asked[0])
    unknown = _run("export", tmp_path, "--variants", "fp32,fp8")
    assert unknown.exit_code == 2 and "fp8" in unknown.output and "Traceback" not in unknown.output


def _json_rows(output: str) -> list[dict]:
    return [json.loads(line) for line in output.strip().splitlines()]


def test_predict_prints_what_the_library_predicts_one_answer_per_line(tmp_path, exported):
    from skeleton.deploy.predictor import Predictor

    texts = tmp_path / "texts.txt"
    texts.write_text("the movie was great\n\nawful plot\r\n\n")  # blank lines are inputs too
    result = _run("predict", exported, "a superb film", "--file", texts, "--json", "--runtime", "onnx-fp32")
    assert result.exit_code == 0, result.output
    rows = _json_rows(result.output)
    inputs = ["a superb film", "the movie was great", "", "awful plot", ""]
    assert [row["text"] for row in rows] == inputs
    predictor = Predictor(exported, runtime="onnx-fp32")
    expected = predictor.probabilities(inputs)
    for row, probabilities in zip(rows, expected, strict=True):
        assert row["label"] == predictor.label_names[int(probabilities.argmax())]
        assert row["score"] == pytest.approx(float(probabilities.max()), abs=1e-6)
        assert [row["scores"][name] for name in predictor.label_names] == pytest.approx(probabilities, abs=1e-6)


def test_standard_input_gives_the_answers_of_the_file(tmp_path, exported):
    lines = "a superb film\n\ndull and boring\ngreat\n"
    (tmp_path / "texts.txt").write_text(lines)
    from_file = _run("predict", exported, "--file", tmp_path / "texts.txt", "--json")
    from_stdin = runner.invoke(app, ["predict", str(exported), "--file", "-", "--json"], input=lines)
    assert from_file.exit_code == 0 and from_stdin.exit_code == 0, from_stdin.output
    assert len(_json_rows(from_stdin.output)) == 4
    assert _json_rows(from_stdin.output) == _json_rows(from_file.output)


def test_predict_reads_a_tables_named_column(tmp_path, exported):
    """A labelled TSV read by its column: the header is not a text and the label is not glued on."""
    table = tmp_path / "reviews.csv"
    table.write_text('id,review,stars\n1,"a superb film, really",5\n2,,1\n3,awful plot,1\n')
    result = _run("predict", exported, "--file", table, "--text-column", "review", "--json")
    assert result.exit_code == 0, result.output
    assert [row["text"] for row in _json_rows(result.output)] == ["a superb film, really", "", "awful plot"]


BAD_RUN_OPTIONS = [
    (["--batch-size", "-1"], "--batch-size must be at least 1, got -1"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--device", "banana"], "--device must be auto, cpu, cuda, cuda:N or mps, got 'banana'"),
    (["--runtime", "tpu"], "--runtime must be one of torch-fp32"),
    (["--threads", "0"], "--threads must be at least 1, got 0"),
]
# --variant: predict's old name of --runtime (evaluate is new and has --runtime alone)
BAD_VARIANTS = [
    (["--variant", "fastest"], "--variant must be one of torch-fp32"),
    (["--variant", "int8", "--runtime", "onnx-fp32"], "--variant int8 and --runtime onnx-fp32 disagree"),
]


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [("predict", *case) for case in BAD_RUN_OPTIONS + BAD_VARIANTS] + [("evaluate", *case) for case in BAD_RUN_OPTIONS],
)
def test_each_bad_option_fails_in_one_line_before_any_model_loads(tmp_path, command, args, message):
    """The directory does not exist: an option checked first is the one reported."""
    given = ["x"] if command == "predict" else ["--data", tmp_path / "none.csv"]
    result = _run(command, tmp_path / "no-model", *given, *args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {message}"), result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_predict_refusals(tmp_path, exported):
    for args, message in (
        (["predict", exported], "no texts"),
        (["predict", exported, "x", "--runtime", "onnx-int8"], "onnx-int8"),
        (["predict", tmp_path / "nowhere", "x"], "directory not found"),
        (["predict", exported, "--file", tmp_path / "none.txt"], "text file not found"),
        (["predict", exported, "--text-column", "review", "x"], "give the table with --file"),
        (["predict", exported, "x", "--pair-column", "b", "--text-column", "a", "--file", "t.csv"], "single texts"),
        (["export", tmp_path], "not a compressed model directory"),
    ):
        failed = _run(*args)
        assert failed.exit_code == 2 and message in failed.output, failed.output
        assert len(failed.output.strip().splitlines()) == 1, failed.output
    # the old name of --runtime still works, and says what it stands for
    alias = _run("predict", exported, "x", "--variant", "fp32")
    assert alias.exit_code == 0 and "--variant is an alias of --runtime: --runtime onnx-fp32" in alias.output


def test_evaluate_scores_a_labelled_file_as_worked_out_by_hand(tmp_path, exported):
    """Accuracy on a CSV with string labels and on the model's GLUE-style TSV equals the share of rows
    whose predicted label (from the library) is the file's."""
    from skeleton.deploy.predictor import Predictor

    rows = [
        ("a superb film", "positive"),
        ("awful plot", "negative"),
        ("great", "positive"),
        ("dull and boring", "negative"),
        ("the movie was great", "negative"),
    ]
    table = tmp_path / "labelled.csv"
    table.write_text("text,gold\n" + "".join(f"{t},{g}\n" for t, g in rows))
    predicted = [label for label, _ in Predictor(exported).predict([t for t, _ in rows])]
    right = sum(p == g for p, (_, g) in zip(predicted, rows, strict=True))
    result = _run("evaluate", exported, "--data", table, "--text-column", "text", "--label-column", "gold", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["rows"] == 5 and report["metrics"]["accuracy"]["value"] == pytest.approx(100 * right / 5)
    assert sum(map(sum, report["confusion"])) == 5
    assert sum(report["confusion"][i][i] for i in range(2)) == right
    # the same rows as a GLUE-style TSV with integer labels (the model's label order), read by its header
    glue = tmp_path / "dev.tsv"
    glue.write_text("sentence\tlabel\n" + "".join(f"{t}\t{int(g == 'positive')}\n" for t, g in rows))
    again = json.loads(_run("evaluate", exported, "--data", glue, "--json").output)
    assert again["metrics"] == report["metrics"] and again["confusion"] == report["confusion"]
    # a label the model does not have is one line
    table.write_text("text,gold\ngreat,neutral\n")
    refused = _run("evaluate", exported, "--data", table, "--text-column", "text", "--label-column", "gold")
    assert refused.exit_code == 2 and "neutral" in refused.output, refused.output


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
    # the default kind (a tuned backbone) keeps the recipe's batch with its own rates and budget (MRPC's: lr
    # 1e-4, twice the prompt's steps)
    tuned = train_config("mrpc", "tune", {})
    assert (tuned.trains, tuned.steps, tuned.backbone_lr, tuned.head_init) == ("full", 2 * recipe.steps, 1e-4, "random")
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
        (["bench", ".", "--calls-per-turn", "0"], "--calls-per-turn must be at least 1"),
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
