"""What ``skeleton predict`` and ``skeleton evaluate`` read: texts from a text file or standard input
(one input per line), the named columns of a table file, or a labelled file's texts and labels.

One answer per input line, in order: a blank line is an input (an empty text, answered like any
other), never dropped, so the answers line up with the lines. A pair model's line holds its two texts
separated by one tab. Tables (CSV, TSV, JSON Lines, Parquet) are read by the same readers as
``skeleton compress --data``; ``datasets`` loads only when a table is read.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from skeleton.core.errors import SkeletonError
from skeleton.core.tasks import TaskSpec

STDIN = "-"  # the file name that reads standard input


def _read_text(source: str | Path, stdin: TextIO | None = None) -> str:
    if str(source) == STDIN:
        return (stdin or sys.stdin).read().removeprefix("\ufeff")
    path = Path(source).expanduser()
    if not path.is_file():
        raise SkeletonError(f"text file not found: {path}")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise SkeletonError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None


def read_lines(source: str | Path, stdin: TextIO | None = None) -> list[str]:
    """Every line of a text file, or of standard input for ``-``: split on newlines only (not on U+2028
    and friends), ``\\r`` and a UTF-8 byte-order mark removed; the newline ending the last line adds no
    empty line, and every other blank line is kept."""
    lines = _read_text(source, stdin).split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def line_inputs(lines: list[str], is_pair: bool, source: str = "input") -> list:
    """Each line as the model takes it: the line itself, or for a pair model its two texts separated by
    one tab (a blank line is a pair of empty texts); one line naming the line number otherwise."""
    if not is_pair:
        return list(lines)
    rows = []
    for number, line in enumerate(lines, start=1):
        first, tab, second = line.partition("\t")
        if not line.strip():
            rows.append(("", ""))
        elif not tab or "\t" in second:
            raise SkeletonError(
                f"{source}, line {number}: this model classifies pairs: two texts separated by one tab, "
                f"got {line.count(chr(9))} tabs"
            )
        else:
            rows.append((first, second))
    return rows


def with_columns(
    spec: TaskSpec, text_columns: tuple[str, ...] = (), pair_column: str | None = None, label_column: str | None = None
) -> TaskSpec:
    """The model's task reading a table's named columns: those given, else the task's own (a built-in
    task reads its GLUE-style TSV files by their header)."""
    columns = (*text_columns, *([pair_column] if pair_column else []))
    if pair_column and not spec.is_pair:
        raise SkeletonError("--pair-column: this model classifies single texts, not pairs")
    if columns and spec.is_pair and len(columns) != 2:
        raise SkeletonError("this model classifies pairs: name their columns with --text-column A --pair-column B")
    if label_column and not (columns or spec.text_columns):
        raise SkeletonError("--label-column: name the text column(s) too (--text-column)")
    return replace(spec, text_columns=columns or spec.text_columns, label_column=label_column or spec.label_column)


@contextmanager
def _table(source: str | Path, data_format: str | None, stdin: TextIO | None) -> Iterator[tuple[Path, str]]:
    """The table's path and format; standard input is copied to a temporary file of its format first (the
    readers take paths), removed when the block ends."""
    from skeleton.core.user_data import data_format as format_of

    if str(source) != STDIN:
        path = Path(source).expanduser()
        yield path, format_of(path, data_format)
        return
    if data_format is None:
        raise SkeletonError("--file -: name the table's format with --data-format (standard input has no extension)")
    with tempfile.TemporaryDirectory(prefix="skeleton-stdin-") as folder:
        path = Path(folder) / f"input.{data_format}"
        path.write_text(_read_text(source, stdin), encoding="utf-8")
        yield path, data_format


def table_inputs(source: str | Path, spec: TaskSpec, data_format: str | None = None, stdin: TextIO | None = None):
    """The inputs in a table's text columns (``spec.text_columns``), one per row in order; an empty cell
    is an empty text, answered like any other."""
    from skeleton.core.user_data import canonical_rows, read_table

    if not spec.text_columns:
        raise SkeletonError("a table needs its text column(s) named: --text-column (and --pair-column for pairs)")
    with _table(source, data_format, stdin) as (path, kind):
        texts, _ = canonical_rows(read_table(path, kind), spec, path, labelled=False, allow_empty=True)
    columns = [texts[name] for name in spec.text_fields]
    return columns[0] if len(columns) == 1 else list(zip(*columns, strict=True))


def labelled_inputs(
    source: str | Path, spec: TaskSpec, data_format: str | None = None, stdin: TextIO | None = None
) -> tuple[list, list[int]]:
    """A labelled file's inputs and label ids (indices of ``spec.label_names``): a user's table by its
    named columns, a built-in task's GLUE-style TSV by its header."""
    from skeleton.core.data import column, read_labelled, split_texts

    with _table(source, data_format, stdin) as (path, kind):
        if not spec.text_columns and kind != "tsv":
            raise SkeletonError(
                f"{path}: name its columns with --text-column and --label-column "
                f"(without them the {spec.name} model reads GLUE-style TSV files by their header)"
            )
        if not path.is_file():
            raise SkeletonError(f"data file not found: {path}")
        split = read_labelled(path, spec, kind)
    return split_texts(split, spec), [int(label) for label in column(split, "label")]
