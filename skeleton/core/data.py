"""Task data through the ``datasets`` library: the hub by default, a local TSV directory offline.

Splits follow the paper: a seeded 10% of the official train split is held out as the validation
split (it drives early stopping and the pruning search); the official labelled dev/test split is
the test split results are reported on. Validation should look like what users send: where the train
split holds phrases cut from its own sentences (SST-2), validation rows are whole sentences and their
phrases leave training; ``validation_min_words`` and ``validation_data`` serve other data.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import datasets

from skeleton.core.config import DataConfig as DataConfig
from skeleton.core.errors import SkeletonError
from skeleton.core.tasks import TaskSpec
from skeleton.core.user_data import canonical_rows, label_ids, load_user_data, read_table

DATA_DIR_ENV = "SKELETON_DATA_DIR"


@dataclass
class TaskData:
    """The three splits of one task, with canonical columns (text fields of the spec, ``label``)."""

    spec: TaskSpec
    train: datasets.Dataset
    validation: datasets.Dataset
    test: datasets.Dataset
    source: str
    validation_source: str = "held-out"
    dropped_from_train: int = 0
    rows: dict[str, list[int]] | None = None  # a user's file: the data rows (0-based) of each split
    # the training rows ``train_samples`` left out, in seeded order: more rows a condensation may distil on
    left_out: datasets.Dataset | None = None

    def summary(self) -> dict[str, object]:
        summary = {
            "task": self.spec.name,
            "source": self.source,
            "train": len(self.train),
            "validation": len(self.validation),
            "test": len(self.test),
            "validation_source": self.validation_source,
            "dropped_from_train": self.dropped_from_train,
            "mean_words": {
                name: _mean_words(getattr(self, name), self.spec) for name in ("train", "validation", "test")
            },
            "label_names": list(self.spec.label_names),
            "class_rows": {
                name: _class_rows(getattr(self, name), self.spec) for name in ("train", "validation", "test")
            },
        }
        if self.rows is not None:
            summary["rows"] = self.rows
        return summary

    def describe(self) -> str:
        """One line: each split's size and mean length, where validation came from."""
        summary = self.summary()
        words = summary["mean_words"]
        dropped = f"; {self.dropped_from_train} training rows left out as validation text" * bool(
            self.dropped_from_train
        )
        return (
            f"train {len(self.train)} rows (mean {words['train']} words), validation {len(self.validation)} "
            f"({self.validation_source}, {words['validation']}), test {len(self.test)} ({words['test']}){dropped}"
        )


def column(split: datasets.Dataset, name: str) -> list:
    """One column's values as a list, read from Arrow at once (``list(split[name])`` reads row by row,
    which took most of the 24 s ``load_task_data`` spent on SST-2)."""
    return split.select_columns([name]).to_dict()[name]


def _words(text: str) -> list[str]:
    return text.lower().split()


def _mean_words(split: datasets.Dataset, spec: TaskSpec) -> float:
    columns = [column(split, f) for f in spec.text_fields]
    counts = [sum(len(_words(text)) for text in row) for row in zip(*columns, strict=True)]
    return round(sum(counts) / max(1, len(counts)), 2)


def _class_rows(split: datasets.Dataset, spec: TaskSpec) -> dict[str, int]:
    counts = [0] * spec.num_labels
    for label in column(split, "label"):
        counts[label] += 1
    return dict(zip(spec.label_names, counts, strict=True))


def _spans(text: str, proper: bool) -> set[str]:
    """Every contiguous word span of ``text`` (lower-cased), without the whole text when ``proper``."""
    words = _words(text)
    n = len(words)
    return {" ".join(words[i:j]) for i in range(n) for j in range(i + 1, n + 1) if not (proper and j - i == n)}


def _eligible(split: datasets.Dataset, spec: TaskSpec, rows: str, min_words: int) -> list[int]:
    """Indices of the rows that may validate: ``min_words`` words in every text field, and with
    ``rows == "whole"`` no other row containing them."""
    texts = {f: column(split, f) for f in spec.text_fields}
    keep = [i for i in range(len(split)) if all(len(_words(texts[f][i])) >= min_words for f in spec.text_fields)]
    if rows == "whole":
        inside = set().union(*(_spans(t, proper=True) for t in texts[spec.text_fields[0]]))
        keep = [i for i in keep if " ".join(_words(texts[spec.text_fields[0]][i])) not in inside]
    return keep


def _normalized_rows(split: datasets.Dataset, spec: TaskSpec) -> list[tuple[str, ...]]:
    """Each row's text fields, lower-cased with whitespace collapsed."""
    columns = [column(split, f) for f in spec.text_fields]
    return [tuple(" ".join(_words(t)) for t in row) for row in zip(*columns, strict=True)]


def _without_contained(train: datasets.Dataset, validation: datasets.Dataset, spec: TaskSpec, rows: str):
    """``train`` less its rows that repeat a validation row, or with ``rows == "whole"`` lie inside one."""
    field = spec.text_fields[0]
    if rows == "whole":
        leaked = set().union(*(_spans(t, proper=False) for t in column(validation, field)))
        keep = [i for i, t in enumerate(column(train, field)) if " ".join(_words(t)) not in leaked]
    else:
        seen = set(_normalized_rows(validation, spec))
        keep = [i for i, row in enumerate(_normalized_rows(train, spec)) if row not in seen]
    return train.select(keep), len(train) - len(keep)


def _resolve_local_dir(spec: TaskSpec, data_dir: str) -> Path:
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise SkeletonError(f"data directory not found: {root}")
    if (root / spec.local_train).is_file():
        return root
    nested = root / spec.name
    if nested.is_dir():
        return nested
    raise SkeletonError(f"no {spec.local_train} for task {spec.name} in {root} (nor in {nested})")


def split_texts(split: datasets.Dataset, spec: TaskSpec) -> list:
    """A split's inputs as a user sends them: strings, or (text1, text2) pairs for pair tasks."""
    columns = [column(split, f) for f in spec.text_fields]
    return columns[0] if len(columns) == 1 else list(zip(*columns, strict=True))


def read_tsv(path: Path, spec: TaskSpec) -> datasets.Dataset:
    """Read one GLUE-style TSV file with a header into a canonical ``Dataset``.

    Quotes are not special (GLUE and MRPC ship unescaped quotes), a UTF-8 byte-order mark and CRLF
    line ends are accepted. Every malformed row is reported with its file and line.
    """
    try:
        # split on newlines only: str.splitlines would also break rows at U+2028 and friends
        lines = [line.rstrip("\r") for line in path.read_text(encoding="utf-8-sig").split("\n")]
    except UnicodeDecodeError as error:
        raise SkeletonError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from error
    if not lines or not lines[0].strip():
        raise SkeletonError(f"{path}: empty file, expected a header line")
    header = [name.strip().lower() for name in lines[0].split("\t")]
    wanted = (*spec.text_fields, "label")
    positions: dict[str, int] = {}
    for index, name in enumerate(header):
        canonical = spec.local_columns.get(name)
        if canonical is not None and canonical not in positions:
            positions[canonical] = index
    missing = [name for name in wanted if name not in positions]
    if missing:
        raise SkeletonError(
            f"{path}: header {lines[0]!r} lacks the column(s) for {', '.join(missing)}; "
            f"accepted names: {', '.join(sorted(spec.local_columns))}"
        )
    columns: dict[str, list] = {name: [] for name in wanted}
    for line_number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise SkeletonError(
                f"{path}:{line_number}: malformed row, {len(fields)} tab-separated fields, expected {len(header)}"
            )
        raw_label = fields[positions["label"]].strip()
        try:
            label = int(raw_label)
        except ValueError as error:
            raise SkeletonError(f"{path}:{line_number}: label {raw_label!r} is not an integer") from error
        if not 0 <= label < spec.num_labels:
            raise SkeletonError(
                f"{path}:{line_number}: label {label} out of range for {spec.name} "
                f"(0..{spec.num_labels - 1}: {', '.join(spec.label_names)})"
            )
        columns["label"].append(label)
        for name in spec.text_fields:
            columns[name].append(fields[positions[name]].strip())
    if not columns["label"]:
        raise SkeletonError(f"{path}: no data rows")
    return datasets.Dataset.from_dict(columns)


def read_labelled(path: Path, spec: TaskSpec, data_format: str | None = None) -> datasets.Dataset:
    """A labelled file of ``spec``'s task in canonical columns: a user's task's own format and columns,
    a built-in task's TSV."""
    if not spec.text_columns:
        return read_tsv(path, spec)
    texts, raw = canonical_rows(read_table(path, data_format), spec, path)
    return datasets.Dataset.from_dict({**texts, "label": label_ids(raw, spec.label_names, path, "given")})


def _load_local(spec: TaskSpec, data_dir: str) -> tuple[datasets.Dataset, datasets.Dataset, str]:
    folder = _resolve_local_dir(spec, data_dir)
    train = read_tsv(folder / spec.local_train, spec)
    for name in spec.local_test:
        if (folder / name).is_file():
            return train, read_tsv(folder / name, spec), str(folder)
    raise SkeletonError(f"no labelled test split in {folder}: expected one of {', '.join(spec.local_test)}")


def _load_hub(spec: TaskSpec) -> tuple[datasets.Dataset, datasets.Dataset, str]:
    source = spec.hub_path if spec.hub_name is None else f"{spec.hub_path}/{spec.hub_name}"
    try:
        loaded = datasets.load_dataset(spec.hub_path, spec.hub_name)
    except Exception as error:  # network, missing dataset: one line, not a traceback
        raise SkeletonError(
            f"could not load {source} from the hub ({type(error).__name__}); "
            f"offline, pass --data-dir DIR or set {DATA_DIR_ENV}"
        ) from error

    def canonical(split: datasets.Dataset) -> datasets.Dataset:
        split = split.select_columns(list(spec.hub_columns))
        return split.rename_columns({k: v for k, v in spec.hub_columns.items() if k != v})

    return canonical(loaded["train"]), canonical(loaded[spec.hub_test_split]), f"hub:{source}"


def _subsample(split: datasets.Dataset, count: int | None, seed: int) -> datasets.Dataset:
    return _subsample_and_rest(split, count, seed)[0]


def _subsample_and_rest(split: datasets.Dataset, count: int | None, seed: int):
    """(``count`` seeded rows of ``split``, the rest in the same seeded order; ``None`` when none is left)."""
    if count is None or count >= len(split):
        return split, None
    shuffled = split.shuffle(seed=seed)
    return shuffled.select(range(count)), shuffled.select(range(count, len(split)))


def load_task_data(config: DataConfig) -> TaskData:
    """Load a task's train/validation/test splits as configured.

    Returns:
        ``TaskData`` whose splits have the task's canonical text columns and an integer ``label``.
    """
    spec = config.task_spec()
    if config.data_file:
        return _load_user_file(config, spec)
    rows = config.validation_rows or spec.validation_rows
    if rows == "whole" and spec.is_pair:
        raise SkeletonError(f"validation rows 'whole' need a single-text task; {spec.name} has text pairs")
    data_dir = config.data_dir or os.environ.get(DATA_DIR_ENV)
    if data_dir:
        full_train, test, source = _load_local(spec, data_dir)
    elif spec.hub_path:
        full_train, test, source = _load_hub(spec)
    else:
        raise SkeletonError(f"task {spec.name} names no hub dataset: pass --data-dir DIR or --data FILE")
    if len(full_train) < 2:
        raise SkeletonError(f"the train split of {spec.name} has {len(full_train)} row(s); need at least 2")
    if len(test) == 0:
        raise SkeletonError(f"the test split of {spec.name} is empty")
    labels = set(test["label"])
    if min(labels) < 0:  # the hub marks unlabelled test rows with -1
        raise SkeletonError(f"the test split of {spec.name} ({source}) is unlabelled")
    train, validation, validation_source, dropped = _split_validation(full_train, spec, config, rows)
    if len(train) == 0:
        raise SkeletonError(
            f"no training rows of {spec.name} are left: every one is, or is contained in, a validation row "
            "(duplicates?); pass --validation-rows all or --validation-data"
        )
    train, left_out = _subsample_and_rest(train, config.train_samples, config.seed)
    test = _subsample(test, config.test_samples, config.seed)
    return TaskData(spec, train, validation, test, source, validation_source, dropped, left_out=left_out)


def _split_validation(full_train: datasets.Dataset, spec: TaskSpec, config: DataConfig, rows: str):
    """(train, validation, where validation came from, training rows dropped as validation text)."""
    if config.validation_data:
        path = Path(config.validation_data).expanduser()
        if not path.is_file():
            raise SkeletonError(f"validation file not found: {path}")
        validation = _subsample(read_tsv(path, spec), config.validation_samples, config.seed)
        train, dropped = _without_contained(full_train, validation, spec, rows)
        return train, validation, str(path), dropped
    if rows == "all" and config.validation_min_words == 0:  # the paper's hold-out
        held_out = full_train.train_test_split(test_size=config.validation_fraction, seed=config.seed)
        validation = _subsample(held_out["test"], config.validation_samples, config.seed)
        return held_out["train"], validation, "held-out", 0
    eligible = _eligible(full_train, spec, rows, config.validation_min_words)
    count = min(len(eligible), max(1, round(config.validation_fraction * len(full_train))))
    count = min(count, config.validation_samples or count)
    if not eligible or count >= len(full_train):
        raise SkeletonError(
            f"no training rows of {spec.name} qualify as validation rows ({rows} rows, at least "
            f"{config.validation_min_words} words); lower --validation-min-words or pass --validation-data"
        )
    rng = random.Random(config.seed)
    chosen = sorted(rng.sample(eligible, count))
    validation = full_train.select(chosen)
    chosen_set = set(chosen)
    rest = full_train.select([i for i in range(len(full_train)) if i not in chosen_set])
    train, dropped = _without_contained(rest, validation, spec, rows)
    source = f"held-out {rows} rows" + (
        f" of at least {config.validation_min_words} words" if config.validation_min_words else ""
    )
    return train, validation, source, dropped


def _load_user_file(config: DataConfig, spec: TaskSpec) -> TaskData:
    """A user's file (``--data``): held-out or given validation and test splits, stratified and seeded."""
    if config.validation_rows == "whole":
        raise SkeletonError("validation rows 'whole' are for SST-2-style phrase data; a user's file holds out rows")
    spec, train, validation, test, rows, dropped = load_user_data(config, spec)
    held = {name: "given" if getattr(config, f"{name}_data") else "held-out" for name in ("validation", "test")}
    source = str(Path(config.data_file).expanduser())
    splits = {"train": train, "validation": validation, "test": test}
    left_out = None
    for name, count in (
        ("train", config.train_samples),
        ("validation", config.validation_samples),
        ("test", config.test_samples),
    ):
        if count is not None and count < len(splits[name]):  # the row indices follow the rows kept
            kept = sorted(random.Random(config.seed).sample(range(len(splits[name])), count))
            if name == "train":  # the rows left out, in seeded order: more rows a condensation may distil on
                rest = sorted(set(range(len(train))) - set(kept))
                random.Random(config.seed).shuffle(rest)
                left_out = train.select(rest)
            splits[name] = splits[name].select(kept)
            rows[name] = [rows[name][i] for i in kept]
    train, validation, test = splits["train"], splits["validation"], splits["test"]
    validation_source = (
        f"{held['validation']} stratified rows" if held["validation"] == "held-out" else config.validation_data
    )
    return TaskData(spec, train, validation, test, source, validation_source, dropped, rows, left_out)
