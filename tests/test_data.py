from pathlib import Path

import pytest

from skeleton.data import DataConfig, load_task_data, read_tsv
from skeleton.errors import SkeletonError
from skeleton.tasks import TASKS, get_task


def test_split_sizes_follow_the_paper(sst2_dir):
    data = load_task_data(DataConfig("sst2", str(sst2_dir)))
    assert (len(data.train), len(data.validation), len(data.test)) == (270, 30, 60)
    assert set(data.train.column_names) == {"text", "label"}


def test_hold_out_is_seeded_and_subsampling_applies(sst2_dir):
    first = load_task_data(DataConfig("sst2", str(sst2_dir), train_samples=50, seed=3))
    again = load_task_data(DataConfig("sst2", str(sst2_dir), train_samples=50, seed=3))
    other = load_task_data(DataConfig("sst2", str(sst2_dir), train_samples=50, seed=4))
    assert len(first.train) == 50
    assert list(first.train["text"]) == list(again.train["text"])
    assert list(first.train["text"]) != list(other.train["text"])


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


@pytest.mark.slow
def test_real_sst2_and_mrpc_load():
    root = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not root.is_dir():
        pytest.skip("../shared/data is not beside this checkout")
    sst2 = load_task_data(DataConfig("sst2", str(root), train_samples=None, validation_samples=None))
    assert len(sst2.test) == 872 and len(sst2.train) + len(sst2.validation) == 67349
    # the defaults (the command line's too) subsample train and validation
    default = load_task_data(DataConfig("sst2", str(root)))
    assert (len(default.train), len(default.validation), len(default.test)) == (20000, 2000, 872)
    mrpc = load_task_data(DataConfig("mrpc", str(root), train_samples=None, validation_samples=None))
    assert len(mrpc.test) == 1725 and len(mrpc.train) + len(mrpc.validation) == 4080  # rows in the shipped file
