"""What predict and evaluate read: lines (one answer per line, blank lines kept), tables, labelled files."""

import io

import pytest

from skeleton.core.errors import SkeletonError
from skeleton.core.tasks import get_task
from skeleton.deploy.inputs import labelled_inputs, line_inputs, read_lines, table_inputs, with_columns


def test_every_line_is_an_input_and_the_last_newline_adds_none(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_bytes("\ufeffgood\r\n\nbad\u2028film\n\n".encode())
    expected = ["good", "", "bad\u2028film", ""]  # split on newlines only; blank lines kept
    assert read_lines(path) == expected
    assert read_lines("-", io.StringIO("\ufeffgood\r\n\nbad\u2028film\n\n")) == expected
    assert read_lines("-", io.StringIO("no final newline")) == ["no final newline"]
    with pytest.raises(SkeletonError, match="text file not found"):
        read_lines(tmp_path / "none.txt")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(SkeletonError, match="not UTF-8 text"):
        read_lines(tmp_path / "latin1.txt")


def test_a_pair_model_reads_two_tab_separated_texts_per_line():
    assert line_inputs(["a\tb", "", "c\td"], is_pair=True) == [("a", "b"), ("", ""), ("c", "d")]
    assert line_inputs(["a\tb", ""], is_pair=False) == ["a\tb", ""]  # a single-text model takes the line
    for bad in ("no tab", "a\tb\tc"):
        with pytest.raises(SkeletonError, match="input, line 2: this model classifies pairs"):
            line_inputs(["a\tb", bad], is_pair=True)


def test_columns_given_replace_the_tasks_own():
    sst2, mrpc = get_task("sst2"), get_task("mrpc")
    assert with_columns(sst2) == sst2
    reading = with_columns(sst2, ("title", "body"), label_column="stars")
    assert reading.text_columns == ("title", "body") and reading.joined and reading.label_column == "stars"
    assert with_columns(mrpc, ("a",), "b").text_columns == ("a", "b")
    for spec, args, message in (
        (sst2, (("a",), "b"), "--pair-column: this model classifies single texts"),
        (mrpc, (("a",),), "this model classifies pairs"),
        (sst2, ((), None, "stars"), "--label-column: name the text column"),
    ):
        with pytest.raises(SkeletonError, match=message):
            with_columns(spec, *args)


def test_a_tables_column_in_row_order_with_empty_cells_kept(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text('review,stars\n"good, really",5\n,1\nbad,2\n')
    spec = with_columns(get_task("sst2"), ("review",))
    assert table_inputs(table, spec) == ["good, really", "", "bad"]
    assert table_inputs("-", spec, "csv", io.StringIO(table.read_text())) == ["good, really", "", "bad"]
    with pytest.raises(SkeletonError, match="--data-format"):
        table_inputs("-", spec, None, io.StringIO(""))
    with pytest.raises(SkeletonError, match="no column 'text'"):
        table_inputs(table, with_columns(get_task("sst2"), ("text",)))
    pairs = tmp_path / "p.jsonl"
    pairs.write_text('{"q": "a", "d": "b"}\n{"q": "c", "d": "e"}\n')
    assert table_inputs(pairs, with_columns(get_task("mrpc"), ("q",), "d")) == [("a", "b"), ("c", "e")]


def test_labelled_files_give_inputs_and_the_models_label_ids(tmp_path):
    sst2 = get_task("sst2")
    glue = tmp_path / "dev.tsv"
    glue.write_text("sentence\tlabel\ngood film\t1\nbad film\t0\n")
    assert labelled_inputs(glue, sst2) == (["good film", "bad film"], [1, 0])
    named = tmp_path / "named.csv"
    named.write_text("text,gold\ngood film,positive\nbad film,negative\n")
    spec = with_columns(sst2, ("text",), label_column="gold")
    assert labelled_inputs(named, spec) == (["good film", "bad film"], [1, 0])
    with pytest.raises(SkeletonError, match="name its columns with --text-column"):
        labelled_inputs(named, sst2)
    named.write_text("text,gold\ngood film,neutral\n")
    with pytest.raises(SkeletonError, match="'neutral'"):
        labelled_inputs(named, spec)
