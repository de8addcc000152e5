"""A user's own labelled file: every format, string labels, stratified splits, bad input in one line,
and a tiny model compressed from a four-class CSV through export, predict and serve."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import datasets
import pytest
from typer.testing import CliRunner

from cli.main import app
from skeleton.core.config import DataConfig
from skeleton.core.data import load_task_data
from skeleton.core.errors import SkeletonError
from skeleton.core.tasks import TASKS, TaskSpec, describe, read_description
from skeleton.core.user_data import stratified_split
from tests.conftest import FILLER, NEGATIVE, POSITIVE

# four topics, each told by its keyword; headlines hold commas and quotes, as real CSVs do
TOPICS = {"joy": POSITIVE[:3], "praise": POSITIVE[3:], "gloom": NEGATIVE[:3], "scorn": NEGATIVE[3:]}
FORMATS = ("csv", "tsv", "json", "jsonl", "parquet")


def topic_rows(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        topic = rng.choice(sorted(TOPICS))
        body = " ".join(rng.sample(FILLER, 2) + [rng.choice(TOPICS[topic])])
        headline = f'{rng.choice(FILLER)}, "{rng.choice(FILLER)}"'
        rows.append({"topic": topic, "headline": headline, "body": body})
    return rows


def write_rows(path: Path, rows: list[dict], kind: str | None = None) -> Path:
    kind = kind or path.suffix.lstrip(".")
    if kind in ("csv", "tsv"):
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t" if kind == "tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    elif kind == "json":
        path.write_text(json.dumps(rows))
    elif kind == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        datasets.Dataset.from_list(rows).to_parquet(str(path))
    return path


def news_config(path: Path, **settings) -> DataConfig:
    return DataConfig(data_file=str(path), text_columns=["headline", "body"], label_column="topic", **settings)


@pytest.fixture(scope="module")
def topics_csv(tmp_path_factory) -> Path:
    return write_rows(tmp_path_factory.mktemp("topics") / "topics.csv", topic_rows(400, 1))


def test_every_format_reads_the_same_rows(tmp_path, topics_csv):
    rows = topic_rows(120, 3)
    rows = [{**row, "headline": row["headline"].replace('"', "")} for row in rows]  # TSV reads quotes as text
    loaded = {}
    for kind in FORMATS:
        data = load_task_data(news_config(write_rows(tmp_path / f"topics.{kind}", rows)))
        loaded[kind] = (data.spec.label_names, data.train[:], data.validation[:], data.test[:], data.rows)
    assert all(value == loaded["csv"] for value in loaded.values())
    names, train, _, _, split_rows = loaded["csv"]
    assert names == ("gloom", "joy", "praise", "scorn")  # sorted
    first = split_rows["train"][0]
    assert train["text"][0] == f"{rows[first]['headline']}. {rows[first]['body']}"  # joined with '. '
    assert names[train["label"][0]] == rows[first]["topic"]


def test_stratified_splits_are_disjoint_reproducible_and_hold_every_class(topics_csv):
    data = load_task_data(news_config(topics_csv))
    again = load_task_data(news_config(topics_csv))
    other = load_task_data(news_config(topics_csv, seed=7))
    assert data.rows == again.rows and data.rows != other.rows
    rows = data.rows
    assert not (set(rows["train"]) & set(rows["validation"])) and not (set(rows["validation"]) & set(rows["test"]))
    assert not (set(rows["train"]) & set(rows["test"]))
    assert sorted(rows["train"] + rows["validation"] + rows["test"]) == list(range(400))
    summary = data.summary()
    for split in ("validation", "test"):
        counts = summary["class_rows"][split]
        assert set(counts) == set(TOPICS) and min(counts.values()) >= 1
        # about a tenth of each class
        for topic, count in counts.items():
            assert abs(count - 0.1 * (count + summary["class_rows"]["train"][topic] * 10 / 8)) < 6
    # no text on two sides of a split: the synthetic rows repeat texts
    texts = {name: set(getattr(data, name)["text"]) for name in ("train", "validation", "test")}
    assert not (texts["train"] & texts["validation"]) and not (texts["train"] & texts["test"])
    assert not (texts["validation"] & texts["test"])


def test_the_training_rows_left_out_by_train_samples_are_kept_for_condensation(topics_csv):
    whole = load_task_data(news_config(topics_csv))
    part = load_task_data(news_config(topics_csv, train_samples=40))
    assert whole.left_out is None and len(part.train) == 40 and len(part.left_out) == len(whole.train) - 40
    assert sorted(list(part.train["text"]) + list(part.left_out["text"])) == sorted(list(whole.train["text"]))
    assert list(part.validation["text"]) == list(whole.validation["text"]) and part.rows["test"] == whole.rows["test"]


def test_repeated_texts_stay_on_one_side_with_hand_worked_groups():
    # rows 0, 2 and 4 are one text; every class has three distinct texts, one per split
    keys = [("a",), ("b",), ("a",), ("c",), ("a",), ("d",), ("e",), ("f",)]
    labels = [0, 0, 0, 0, 0, 1, 1, 1]
    split = stratified_split(keys, labels, {"validation": 0.1, "test": 0.1}, 0, ("x", "y"))
    where = {row: name for name, rows in split.items() for row in rows}
    assert where[0] == where[2] == where[4]
    assert {where[5], where[6], where[7]} == {"train", "validation", "test"}
    with pytest.raises(SkeletonError, match="class 'y' has 2 distinct text"):
        stratified_split(keys[:-1], labels[:-1], {"validation": 0.1, "test": 0.1}, 0, ("x", "y"))


def test_given_validation_and_test_files_and_a_task_file(tmp_path):
    rows = topic_rows(300, 4)
    train = write_rows(tmp_path / "train.jsonl", rows[:200] + rows[200:203] + rows[260:262])  # 5 repeat held-out texts
    valid = write_rows(tmp_path / "valid.jsonl", rows[200:250])
    test = write_rows(tmp_path / "test.jsonl", rows[250:])
    task = tmp_path / "topics.yaml"
    task.write_text(
        "name: topics\ntext_columns: [headline, body]\nlabel_column: topic\n"
        "labels: [scorn, praise, joy, gloom]\ntemplate: 'News: {text}. Topic: <mask>.'\n"
    )
    data = load_task_data(
        DataConfig(data_file=str(train), task_file=str(task), validation_data=str(valid), test_data=str(test))
    )
    assert data.spec.name == "topics" and data.spec.label_names == ("scorn", "praise", "joy", "gloom")
    assert data.spec.template == "News: {text}. Topic: <mask>." and data.spec.metrics == ("macro_f1",)
    assert len(data.validation) == 50 and len(data.test) == 50 and data.rows["test"] == list(range(50))
    seen = set(data.validation["text"]) | set(data.test["text"])
    assert not seen & set(data.train["text"]) and data.dropped_from_train == 5  # repeated texts leave training
    # the column options win over the task file's
    pair = load_task_data(
        DataConfig(data_file=str(train), task_file=str(task), text_columns=["headline"], pair_column="body")
    )
    assert pair.spec.text_fields == ("text1", "text2") and pair.spec.is_pair and not pair.spec.joined


def test_the_built_in_tasks_are_descriptions_too(tmp_path):
    for name, spec in TASKS.items():
        path = Path(__file__).parents[1] / "skeleton" / "core" / "task_descriptions" / f"{name}.yaml"
        assert read_description(path) == spec
        assert TaskSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec  # what a model saves
    own = tmp_path / "mine.json"
    own.write_text(json.dumps({"text_columns": ["q"], "labels": ["no", "yes"]}))
    spec = read_description(own)
    assert (spec.name, spec.metrics, spec.verbalizer) == ("mine", ("f1",), ("no", "yes"))
    for record, message in (
        ({"text_columns": ["q"], "colour": 1}, "unknown key"),
        ({"text_columns": ["a", "b", "c"], "pair": True}, "exactly two text columns"),
        ({"text_columns": ["q"], "template": "{q} is"}, "needs a <mask>"),
        ({"text_columns": ["q"], "template": "{text1} is <mask>"}, "must name {q}"),
        ({"label_column": "y"}, "name the text column"),
        ({"text_columns": ["q"], "metrics": ["auc"]}, "unknown metric"),
    ):
        with pytest.raises(SkeletonError, match=message):
            describe(record)


def _compress(*args) -> object:
    return CliRunner().invoke(app, ["compress", *map(str, args), "--quiet"])


def _row(i: int, category: str) -> dict:
    return {"headline": f"a{i}", "body": "b", "category": category}


BAD_INPUTS = [
    ("missing column", [{"headline": "a", "body": "b", "topic": "joy"}] * 9, {}, "no column 'category'"),
    ("one class", [{"headline": f"a{i}", "body": "b", "category": "joy"} for i in range(9)], {}, "holds one class"),
    (
        "too few rows",
        [{"headline": f"a{i}", "body": "b", "category": "joy" if i else "gloom"} for i in range(9)],
        {},
        "class 'gloom' has 1 distinct text",
    ),
    (
        "empty text",
        [{"headline": f"a{i}" if i != 4 else "", "body": "" if i == 4 else "b", "category": "x"} for i in range(9)],
        {},
        "row 5 has an empty text in headline/body",
    ),
    ("nan label", [_row(i, "" if i == 6 else "x") for i in range(9)], {}, "row 7 has no label"),
    ("too many rows", [_row(i, "xy"[i % 2]) for i in range(9)], {"--max-rows": 8}, "more than --max-rows 8"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "options", "message"), [case[1:] for case in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, rows, options, message):
    data = write_rows(tmp_path / "data.csv", rows)
    result = _compress(
        "--data", data, "--text-column", "headline", "--text-column", "body", "--label-column", "category",
        *[str(part) for item in options.items() for part in item], "--output", tmp_path / "out",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "out").exists()


def test_unparsable_files_and_unseen_test_labels_are_one_line(tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_text("headline,body,category\na,b,x\nc,d,y,extra\n")
    unseen = write_rows(tmp_path / "test.csv", [{"headline": "a", "body": "b", "category": "zebra"}])
    train = write_rows(
        tmp_path / "train.csv", [{"headline": f"a{i}", "body": "b", "category": "xy"[i % 2]} for i in range(12)]
    )
    columns = ("--text-column", "headline", "--label-column", "category")
    labels_only = tmp_path / "task.yaml"
    labels_only.write_text("name: topics\nlabel_column: category\n")
    for args, message in (
        (("--data", broken, *columns), "line 3"),
        (("--data", train, "--test-data", unseen, *columns), "label 'zebra', which training never has"),
        (("--data", tmp_path / "data.xlsx", *columns), "data file not found"),
        (("--text-column", "headline"), "describe a user's file: give --data too"),
        (("--data", train, "--label-column", "category"), "train.csv: name the text column(s) with --text-column"),
        (
            ("--data", train, "--task-file", labels_only, "--label-column", "category"),
            "task.yaml: name the text column(s) ('text_columns' in a task file, or --text-column)",
        ),
    ):
        result = _compress(*args, "--output", tmp_path / "out")
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    odd = write_rows(tmp_path / "data.txt", [{"headline": "a", "body": "b", "category": "x"}], "csv")
    result = _compress("--data", odd, *columns)
    assert result.exit_code == 2 and "pass --data-format" in result.output


def test_a_four_class_csv_compresses_end_to_end_and_answers_with_its_labels(tmp_path, topics_csv, tiny_bert_dir):
    """A tiny model through compress, export, predict and serve: every answer names the user's labels."""
    from skeleton.deploy.predictor import Predictor
    from tests.test_server import CLEAN_EXITS, Server

    out = tmp_path / "topics-model"
    result = _compress(
        "--data", topics_csv, "--text-column", "headline", "--text-column", "body", "--label-column", "topic",
        "--model", tiny_bert_dir, "--tune", "full", "--epochs", "2", "--allow-weak-prior",
        "--max-trials", "1", "--condense-steps", "4", "--no-export", "--device", "cpu", "--output", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "F1 per class" in result.output and "praise" in result.output  # the user's class names, unmangled
    exported = CliRunner().invoke(app, ["export", str(out), "--variants", "fp32", "--quiet"])
    assert exported.exit_code == 0, exported.output
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "topics" and report["data"]["label_names"] == ["gloom", "joy", "praise", "scorn"]
    for model in ("prompt_tuned", "skeleton"):
        metrics = report[model]["test"]
        assert {"accuracy", "macro_f1", "f1[joy]"} <= set(metrics)
        per_class = [metrics[f"f1[{name}]"] for name in TOPICS]
        assert metrics["macro_f1"] == pytest.approx(sum(per_class) / 4)
    assert sorted(report["data"]["rows"]["test"]) == report["data"]["rows"]["test"]

    predicted = CliRunner().invoke(app, ["predict", str(out), "the great movie", "--json"])
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.output.splitlines()[0])["label"] in TOPICS
    predictor = Predictor(out)
    assert predictor.label_names == ["gloom", "joy", "praise", "scorn"]
    server = Server([f"topics={out}"])
    try:
        answer = server.post("/v1/models/topics/predict", json={"inputs": ["the great movie"]}).json()
        assert sorted(row["label"] for row in answer[0]) == sorted(TOPICS)
        assert answer[0][0]["label"] == predictor.predict(["the great movie"])[0][0]
    finally:
        assert server.stop() in CLEAN_EXITS


def test_integer_labels_index_the_names_a_task_file_gives(tmp_path):
    rows = [{"q": f"text {i}", "y": i % 2} for i in range(30)]
    data = write_rows(tmp_path / "ints.jsonl", rows)
    task = tmp_path / "t.yaml"
    task.write_text("text_columns: [q]\nlabel_column: y\nlabels: [neg, pos]\n")
    loaded = load_task_data(DataConfig(data_file=str(data), task_file=str(task)))
    assert loaded.spec.label_names == ("neg", "pos")
    first = loaded.rows["train"][0]
    assert loaded.train["label"][0] == rows[first]["y"]
    plain = load_task_data(DataConfig(data_file=str(data), text_columns=["q"], label_column="y"))
    assert plain.spec.label_names == ("0", "1")  # no names given: the integers are the names
