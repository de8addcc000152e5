from pathlib import Path

import pytest

from skeleton.core.data import DataConfig, load_task_data, read_tsv
from skeleton.core.errors import SkeletonError
from skeleton.core.tasks import TASKS, get_task


def test_split_sizes_follow_the_paper(sst2_dir):
    data = load_task_data(DataConfig("sst2", str(sst2_dir), validation_rows="all"))
    assert (len(data.train), len(data.validation), len(data.test)) == (270, 30, 60)
    assert set(data.train.column_names) == {"text", "label"}


def test_hold_out_is_seeded_and_subsampling_applies(sst2_dir):
    first = load_task_data(DataConfig("sst2", str(sst2_dir), train_samples=50, seed=3))
    again = load_task_data(DataConfig("sst2", str(sst2_dir), train_samples=50, seed=3))
    other = load_task_data(DataConfig("sst2", str(sst2_dir), train_samples=50, seed=4))
    assert len(first.train) == 50
    assert list(first.train["text"]) == list(again.train["text"])
    assert list(first.train["text"]) != list(other.train["text"])


def test_the_rows_train_samples_leaves_out_are_the_rest_of_the_training_split(sst2_dir):
    """What a condensation may distil on beyond the training split: every other post-hold-out training row,
    once, in a seeded order; validation and test are the same whatever is subsampled."""
    whole = load_task_data(DataConfig("sst2", str(sst2_dir), validation_rows="all"))
    part = load_task_data(DataConfig("sst2", str(sst2_dir), validation_rows="all", train_samples=50))
    assert whole.left_out is None and len(part.train) == 50 and len(part.left_out) == len(whole.train) - 50
    assert sorted(list(part.train["text"]) + list(part.left_out["text"])) == sorted(list(whole.train["text"]))
    assert list(part.validation["text"]) == list(whole.validation["text"])
    assert list(part.test["text"]) == list(whole.test["text"])
    again = load_task_data(DataConfig("sst2", str(sst2_dir), validation_rows="all", train_samples=50))
    assert list(again.left_out["text"]) == list(part.left_out["text"])


def test_root_directory_with_task_folder_and_env_var(sst2_dir, monkeypatch):
    assert len(load_task_data(DataConfig("sst2", str(sst2_dir.parent))).test) == 60
    monkeypatch.setenv("SKELETON_DATA_DIR", str(sst2_dir.parent))
    assert load_task_data(DataConfig("sst2")).source == str(sst2_dir)


def test_mrpc_original_format_with_bom_and_crlf(tmp_path):
    folder = tmp_path / "mrpc"
    folder.mkdir()
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
    rows = ['1\t1\t2\tHe said "yes".\tHe agreed.', "0\t3\t4\tIt rained.\tThe sun shone."]
    for name in ("train.tsv", "test.tsv"):
        (folder / name).write_bytes(("\ufeff" + "\r\n".join([header, *rows]) + "\r\n").encode("utf-8"))
    dataset = read_tsv(folder / "train.tsv", get_task("mrpc"))
    assert list(dataset["text1"]) == ['He said "yes".', "It rained."]
    assert list(dataset["label"]) == [1, 0]


def test_malformed_row_names_file_and_line(tmp_path):
    (tmp_path / "train.tsv").write_text("sentence\tlabel\nfine\t1\nbroken row\n")
    with pytest.raises(SkeletonError, match=r"train.tsv:3: malformed row"):
        read_tsv(tmp_path / "train.tsv", get_task("sst2"))


def test_label_out_of_range(tmp_path):
    (tmp_path / "train.tsv").write_text("sentence\tlabel\nfine\t7\n")
    with pytest.raises(SkeletonError, match=r"train.tsv:2: label 7 out of range"):
        read_tsv(tmp_path / "train.tsv", get_task("sst2"))


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "data directory not found"),
        (lambda d: d.mkdir(), "no train.tsv"),
        (lambda d: (d.mkdir(), (d / "train.tsv").write_text("sentence\tlabel\n")), "no data rows"),
        (
            lambda d: (d.mkdir(), (d / "train.tsv").write_text("sentence\tlabel\na\t1\nb\t0\n")),
            "no labelled test split",
        ),
        (lambda d: (d.mkdir(), (d / "train.tsv").write_text("text\tfoo\na\t1\n")), "lacks the column"),
    ],
)
def test_bad_data_directories(tmp_path, setup, message):
    folder = tmp_path / "sst2"
    setup(folder)
    with pytest.raises(SkeletonError, match=message):
        load_task_data(DataConfig("sst2", str(folder)))


def test_unknown_task_lists_known_ones():
    with pytest.raises(SkeletonError, match="known tasks: ag_news, cb, imdb, mrpc, sst2"):
        get_task("sst3")


def test_every_task_is_complete():
    for spec in TASKS.values():
        assert len(spec.verbalizer) == spec.num_labels
        assert "<mask>" in spec.template
        for field in spec.text_fields:
            assert "{" + field + "}" in spec.template


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="train_samples"):
        DataConfig(train_samples=0)
    with pytest.raises(ValueError, match="validation_fraction"):
        DataConfig(validation_fraction=1.5)


def write_phrase_bank(directory: Path) -> Path:
    """An SST-2-like train split: ten sentences, each also cut into phrases (as SST-2 ships them)."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(10):
        words = [f"{word}{i}" for word in "the film was truly wonderful to watch tonight".split()]
        rows.append(" ".join(words))
        rows += [" ".join(words[a:b]) for a, b in ((0, 4), (4, 8), (5, 7), (1, 3))]
    lines = ["sentence\tlabel"] + [f"{row}\t{i % 2}" for i, row in enumerate(rows)] + ["a lone phrase\t1"]
    (directory / "train.tsv").write_text("\n".join(lines) + "\n")
    (directory / "dev.tsv").write_text("sentence\tlabel\nsome test sentence\t1\n")
    return directory


def test_whole_row_validation_takes_sentences_and_drops_their_phrases_from_training(tmp_path):
    folder = write_phrase_bank(tmp_path / "sst2")
    data = load_task_data(DataConfig("sst2", str(folder), validation_fraction=0.1))  # the task's default: whole
    sentences = {
        " ".join(f"{w}{i}" for w in "the film was truly wonderful to watch tonight".split()) for i in range(10)
    }
    sentences.add("a lone phrase")
    validation = list(data.validation["text"])
    assert len(validation) == 5 and set(validation) <= sentences  # 10% of 51 rows, only whole rows
    for row in data.train["text"]:
        assert not any(row in sentence for sentence in validation)  # nothing of a validation row is trained on
    assert data.dropped_from_train == 4 * len([v for v in validation if v != "a lone phrase"])
    assert len(data.train) + len(validation) + data.dropped_from_train == 51
    assert f"{data.dropped_from_train} training rows left out as validation text" in data.describe()
    assert data.summary()["validation_source"] == "held-out whole rows"
    again = load_task_data(DataConfig("sst2", str(folder)))
    assert list(again.validation["text"]) == validation
    # 'all' is the paper's plain hold-out, phrases and all
    plain = load_task_data(DataConfig("sst2", str(folder), validation_rows="all"))
    assert len(plain.train) + len(plain.validation) == 51 and plain.dropped_from_train == 0


def test_validation_min_words_and_validation_data(tmp_path):
    folder = write_phrase_bank(tmp_path / "sst2")
    long_rows = load_task_data(DataConfig("sst2", str(folder), validation_rows="all", validation_min_words=4))
    assert len(long_rows.validation) == 5 and all(len(t.split()) >= 4 for t in long_rows.validation["text"])
    with pytest.raises(SkeletonError, match="no training rows of sst2 qualify"):
        load_task_data(DataConfig("sst2", str(folder), validation_min_words=50))
    mine = "the3 film3 was3 truly3 wonderful3 to3 watch3 tonight3"
    (tmp_path / "mine.tsv").write_text(f"sentence\tlabel\n{mine}\t0\n")
    own = load_task_data(DataConfig("sst2", str(folder), validation_data=str(tmp_path / "mine.tsv")))
    assert list(own.validation["text"]) == [mine]
    assert own.validation_source.endswith("mine.tsv") and own.dropped_from_train == 5  # the sentence and 4 phrases
    assert len(own.train) == 46
    with pytest.raises(SkeletonError, match="validation file not found"):
        load_task_data(DataConfig("sst2", str(folder), validation_data=str(tmp_path / "missing.tsv")))
    with pytest.raises(SkeletonError, match="need a single-text task"):
        load_task_data(DataConfig("mrpc", str(folder), validation_rows="whole"))
    with pytest.raises(ValueError, match="validation_rows"):
        DataConfig(validation_rows="sentences")


@pytest.mark.slow
def test_real_sst2_and_mrpc_load():
    root = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not root.is_dir():
        pytest.skip("../shared/data is not beside this checkout")
    sst2 = load_task_data(
        DataConfig("sst2", str(root), train_samples=None, validation_samples=None, validation_rows="all")
    )
    assert len(sst2.test) == 872 and len(sst2.train) + len(sst2.validation) == 67349
    # by default SST-2 validates on whole sentences, as long as the test split's, their phrases untrained
    whole = load_task_data(DataConfig("sst2", str(root), train_samples=None))
    assert len(whole.validation) == 2000 and len(whole.train) + 2000 + whole.dropped_from_train == 67349
    words = whole.summary()["mean_words"]
    assert words["validation"] > 17 and abs(words["validation"] - words["test"]) < 2 and words["train"] < 12
    # the defaults (the command line's too) subsample train and validation
    default = load_task_data(DataConfig("sst2", str(root)))
    assert (len(default.train), len(default.validation), len(default.test)) == (20000, 2000, 872)
    mrpc = load_task_data(DataConfig("mrpc", str(root), train_samples=None, validation_samples=None))
    assert len(mrpc.test) == 1725 and len(mrpc.train) + len(mrpc.validation) == 4080  # rows in the shipped file


def test_whole_rows_that_leave_no_training_row_are_refused(tmp_path):
    folder = tmp_path / "sst2"
    folder.mkdir()
    rows = ["sentence\tlabel"] + [f"the same sentence\t{i % 2}" for i in range(20)]
    for name in ("train.tsv", "dev.tsv"):
        (folder / name).write_text("\n".join(rows) + "\n")
    with pytest.raises(SkeletonError, match="no training rows of sst2 are left.*--validation-rows all"):
        load_task_data(DataConfig("sst2", str(folder)))
    assert len(load_task_data(DataConfig("sst2", str(folder), validation_rows="all")).train) == 18
