"""A user's own labelled file (CSV, TSV, JSON, JSON Lines, Parquet) as a task's three splits.

The file is read by ``datasets``' own loaders, its text column(s) and label column become the task's
canonical columns (``text`` or ``text1``/``text2``, an integer ``label``), and, where the user gives no
validation or test file, both are held out of it: stratified by label, seeded, and by text, so that a
text repeated in the file never sits on two sides of a split. Bad input is one line naming the file,
the row and what is wrong, before anything trains.
"""

from __future__ import annotations

import csv
import math
import random
import re
from collections import defaultdict
from pathlib import Path

import datasets

from skeleton.core.config import DATA_FORMATS, DataConfig
from skeleton.core.errors import SkeletonError
from skeleton.core.tasks import TaskSpec

FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
INTEGER = re.compile(r"^[+-]?\d+$")


def data_format(path: Path, given: str | None) -> str:
    """The file's format: as given, else from its extension."""
    if given:
        return given
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise SkeletonError(
            f"{path}: cannot tell the format from the extension {path.suffix or '(none)'}; "
            f"pass --data-format ({', '.join(DATA_FORMATS)})"
        )
    return found


def read_table(path: str | Path, given_format: str | None = None, max_rows: int | None = None) -> datasets.Dataset:
    """Every row of ``path`` as a ``Dataset`` of its own columns; CSV and TSV cells are read as strings
    (so labels ``1`` and ``01`` stay what the file says and an empty cell is ``None``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SkeletonError(f"data file not found: {path}")
    kind = data_format(path, given_format)
    options: dict = {}
    if kind in ("csv", "tsv"):
        delimiter = "\t" if kind == "tsv" else ","
        try:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                header = next(csv.reader(handle, delimiter=delimiter), None)
        except UnicodeDecodeError as error:
            raise SkeletonError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        if not header:
            raise SkeletonError(f"{path}: empty file, expected a header line")
        if len(set(header)) != len(header):
            raise SkeletonError(f"{path}: the header repeats a column name: {','.join(header)}")
        features = datasets.Features({name: datasets.Value("string") for name in header})
        options = {"delimiter": delimiter, "features": features, "encoding": "utf-8-sig"}
        if kind == "tsv":
            options["quoting"] = csv.QUOTE_NONE  # GLUE-style TSV: quotes are text
    loader = {"csv": "csv", "tsv": "csv", "json": "json", "jsonl": "json", "parquet": "parquet"}[kind]
    datasets.disable_progress_bars()
    try:
        table = datasets.load_dataset(loader, data_files=str(path), split="train", **options)
    except Exception as error:  # the loaders raise many kinds; the cause names the line
        cause = error.__cause__ or error
        detail = " ".join(str(cause).split()) or type(cause).__name__
        raise SkeletonError(f"{path}: could not be read as {kind} ({detail[:300]})") from None
    finally:
        datasets.enable_progress_bars()
    if len(table) == 0:
        raise SkeletonError(f"{path}: no data rows")
    if max_rows is not None and len(table) > max_rows:
        raise SkeletonError(f"{path}: {len(table)} rows, more than --max-rows {max_rows}")
    return table


def _text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _label(value) -> str | None:
    """A label cell as text (``None`` when empty); 3.0 from a float column reads as 3."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def canonical_rows(
    table: datasets.Dataset, spec: TaskSpec, path: Path, labelled: bool = True, allow_empty: bool = False
) -> tuple[dict[str, list[str]], list[str]]:
    """The texts in the task's canonical fields and the raw label of every row; one line for a missing
    column, an empty text (unless ``allow_empty``) or an empty label. Unlabelled (``labelled=False``):
    the texts alone, and no labels."""
    wanted = [*spec.text_columns, spec.label_column] if labelled else list(spec.text_columns)
    missing = [name for name in wanted if name not in table.column_names]
    if missing:
        raise SkeletonError(
            f"{path}: no column {', '.join(repr(m) for m in missing)}; its columns are {', '.join(table.column_names)}"
        )
    columns = {name: table[name] for name in wanted}
    labels = []
    for row, value in enumerate(columns[spec.label_column] if labelled else (), start=1):
        label = _label(value)
        if label is None:
            raise SkeletonError(f"{path}: row {row} has no label in column {spec.label_column!r}")
        labels.append(label)
    texts: dict[str, list[str]] = {}
    if spec.joined:
        parts = [[_text(v) for v in columns[name]] for name in spec.text_columns]
        texts[spec.text_fields[0]] = [spec.separator.join(p for p in row if p) for row in zip(*parts, strict=True)]
    else:
        for name, canonical in zip(spec.text_columns, spec.text_fields, strict=True):
            texts[canonical] = [_text(v) for v in columns[name]]
    for canonical, values in () if allow_empty else texts.items():
        for row, value in enumerate(values, start=1):
            if not value:
                where = (
                    "/".join(spec.text_columns)
                    if spec.joined
                    else dict(zip(spec.text_fields, spec.text_columns, strict=True))[canonical]
                )
                raise SkeletonError(f"{path}: row {row} has an empty text in {where}")
    return texts, labels


def _integers_index(raw: set[str], names) -> bool:
    """Whether integer labels stand for positions in ``names`` (every label an integer, none a name)."""
    return all(INTEGER.match(v) for v in raw) and not (raw & set(names))


def label_names(raw: list[str], spec: TaskSpec, path: Path) -> tuple[str, ...]:
    """The task's label names: the description's, else the labels found, sorted (numerically when every
    one is an integer). At least two classes."""
    found = sorted(set(raw), key=lambda x: (int(x), x) if all(INTEGER.match(v) for v in set(raw)) else (0, x))
    if spec.label_names:
        known = set(spec.label_names)
        if _integers_index(set(found), known) and all(0 <= int(v) < len(spec.label_names) for v in found):
            return spec.label_names  # integer labels index the described names
        unknown = [v for v in found if v not in known]
        if unknown:
            raise SkeletonError(
                f"{path}: label(s) {', '.join(unknown)} are not among the task's labels ({', '.join(spec.label_names)})"
            )
        return spec.label_names
    if len(found) < 2:
        raise SkeletonError(
            f"{path}: column {spec.label_column!r} holds one class ({found[0]}); a classifier needs two or more"
        )
    return tuple(found)


def label_ids(raw: list[str], names: tuple[str, ...], path: Path, split: str = "training") -> list[int]:
    """Each raw label's index in ``names``; one line for a label the training data never had."""
    index = {name: i for i, name in enumerate(names)}
    if _integers_index(set(raw), names):
        index = {str(i): i for i in range(len(names))}
    ids = []
    for row, value in enumerate(raw, start=1):
        if value not in index:
            raise SkeletonError(
                f"{path}: row {row} of the {split} data has label {value!r}, which training never has "
                f"({', '.join(names)})"
            )
        ids.append(index[value])
    return ids


def text_key(texts: dict[str, list[str]], row: int) -> tuple[str, ...]:
    """What makes two rows the same text: their words, lower-cased, in every field."""
    return tuple(" ".join(values[row].lower().split()) for values in texts.values())


def stratified_split(
    keys: list[tuple[str, ...]], labels: list[int], fractions: dict[str, float], seed: int, names: tuple[str, ...]
) -> dict[str, list[int]]:
    """Row indices of each held-out split in ``fractions`` and of ``train`` (the rest): every class
    split in the same shares, seeded; rows of one text stay together (on the side of their first row's
    class), so no text sits on two sides. One line when a class has too few texts for every split."""
    groups: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for row, key in enumerate(keys):
        groups[key].append(row)
    by_class: dict[int, list[list[int]]] = defaultdict(list)
    for rows in groups.values():
        by_class[labels[rows[0]]].append(rows)
    rng = random.Random(seed)
    chosen: dict[str, list[int]] = {name: [] for name in (*fractions, "train")}
    for label in sorted(by_class):
        members = by_class[label]
        needed = 1 + len(fractions)
        if len(members) < needed:
            raise SkeletonError(
                f"class {names[label]!r} has {len(members)} distinct text(s); holding out "
                f"{' and '.join(fractions)} needs at least {needed} (one for each split and one to train)"
            )
        rng.shuffle(members)
        start = 0
        for name, fraction in fractions.items():
            count = min(max(1, round(fraction * len(members))), len(members) - (needed - 1))
            for rows in members[start : start + count]:
                chosen[name].extend(rows)
            start += count
        for rows in members[start:]:
            chosen["train"].extend(rows)
    return {name: sorted(rows) for name, rows in chosen.items()}


def _split(texts: dict[str, list[str]], labels: list[int], rows: list[int]) -> datasets.Dataset:
    columns = {field: [values[i] for i in rows] for field, values in texts.items()}
    return datasets.Dataset.from_dict({**columns, "label": [labels[i] for i in rows]})


def _read_labelled(path: Path, config: DataConfig, spec: TaskSpec):
    table = read_table(path, config.data_format, config.max_rows)
    return canonical_rows(table, spec, path)


def load_user_data(config: DataConfig, spec: TaskSpec):
    """A user's file as ``(spec with its labels, train, validation, test, row indices, rows dropped)``.

    Validation and test come from ``validation_data`` / ``test_data`` where given, else are held out of
    ``data_file`` (``validation_fraction``, ``test_fraction``; :func:`stratified_split`). Training rows
    whose text a validation or test row repeats are dropped (their count is returned). The row indices
    (0-based data rows of each file) let a user rebuild the splits."""
    path = Path(config.data_file).expanduser()
    texts, raw = _read_labelled(path, config, spec)
    names = label_names(raw, spec, path)
    spec = spec.with_labels(names)
    labels = label_ids(raw, names, path)
    keys = [text_key(texts, row) for row in range(len(labels))]
    held_out = {
        name: fraction
        for name, fraction, given in (
            ("validation", config.validation_fraction, config.validation_data),
            ("test", config.test_fraction, config.test_data),
        )
        if not given
    }
    rows = stratified_split(keys, labels, held_out, config.seed, names)
    splits = {name: _split(texts, labels, rows[name]) for name in held_out}
    taken = {key for name in held_out for row in rows[name] for key in [keys[row]]}
    for name, given in (("validation", config.validation_data), ("test", config.test_data)):
        if given:
            other = Path(given).expanduser()
            other_texts, other_raw = _read_labelled(other, config, spec)
            other_labels = label_ids(other_raw, names, other, name)
            rows[name] = list(range(len(other_labels)))
            splits[name] = _split(other_texts, other_labels, rows[name])
            taken |= {text_key(other_texts, row) for row in rows[name]}
    train_rows = [row for row in rows["train"] if keys[row] not in taken]
    dropped = len(rows["train"]) - len(train_rows)
    rows["train"] = train_rows
    missing = sorted(set(range(len(names))) - {labels[row] for row in train_rows})
    if missing:
        raise SkeletonError(f"{path}: no training rows are left for class(es) {', '.join(names[i] for i in missing)}")
    splits["train"] = _split(texts, labels, train_rows)
    return spec, splits["train"], splits["validation"], splits["test"], rows, dropped
