"""The run's JSON files as records: round trips, older files, and clear errors for damaged ones."""

from __future__ import annotations

import json

import pytest

from skeleton.core.errors import SkeletonError
from skeleton.core.reports import CompressReport, ExportSummary, Manifest, ModelMeta, TuneReport, load_report


def _manifest() -> Manifest:
    return Manifest(
        task="sst2",
        label_names=["negative", "positive"],
        inputs=["input_ids", "attention_mask"],
        max_input_tokens=107,
        variants={"fp32": {"file": "model.onnx", "bytes": 10}},
        default_variant="fp32",
        files={"model.onnx": "ab" * 32},
    )


def test_a_record_survives_a_round_trip_through_its_file(tmp_path):
    manifest = _manifest()
    manifest.save(tmp_path / "manifest.json")
    assert Manifest.load(tmp_path / "manifest.json") == manifest
    written = json.loads((tmp_path / "manifest.json").read_text())
    # the file keeps the shape readers outside Python rely on
    assert written["format"] == "skeleton-onnx/1" and written["outputs"] == ["logits"]


def test_the_export_section_nests_inside_a_report_and_comes_back_typed(tmp_path):
    summary = ExportSummary.of(_manifest(), "onnx", 12.5)
    report = CompressReport(
        task="sst2",
        model="m",
        prompt_tuned={"validation": {"accuracy": 80.0}},
        skeleton={"validation": {"accuracy": 79.5}},
        search_value=0.5,
        kept_fraction=0.5,
        config={"data": {}},
        export=summary,
    )
    report.save(tmp_path / "report.json")
    loaded = load_report(tmp_path / "report.json")
    assert isinstance(loaded, CompressReport) and isinstance(loaded.export, ExportSummary)
    assert loaded == report and loaded.export.default_variant == "fp32"


def test_a_report_written_before_the_search_value_was_named_loads(tmp_path):
    """report.json files of earlier runs call the search value kept_ratio: it is read as search_value."""
    old = {"task": "sst2", "model": "m", "prompt_tuned": {}, "skeleton": {}, "kept_ratio": 0.45, "kept_fraction": 0.5}
    (tmp_path / "report.json").write_text(json.dumps({**old, "config": {}}))
    assert load_report(tmp_path / "report.json").search_value == 0.45


def test_a_tune_report_is_told_apart_by_its_kind(tmp_path):
    TuneReport(config={"data": {"task": "sst2"}}, validation={"accuracy": 81.0}).save(tmp_path / "report.json")
    loaded = load_report(tmp_path / "report.json")
    assert isinstance(loaded, TuneReport) and loaded.validation == {"accuracy": 81.0}


def test_older_and_newer_files_load(tmp_path):
    # an older skeleton.json without the fields added since, and a newer one with a field this
    # version does not know: both load, with defaults for what is missing
    path = tmp_path / "skeleton.json"
    path.write_text(json.dumps({"task": "sst2", "base_model": "m", "added_later": 1}))
    meta = ModelMeta.load(path)
    assert meta.task == "sst2" and meta.max_length == 128 and meta.label_names == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        (json.dumps({"base_model": "m"}), "task missing"),
        (json.dumps([1, 2]), "expected a JSON object"),
    ],
)
def test_a_damaged_file_is_one_clear_error(tmp_path, content, message):
    path = tmp_path / "skeleton.json"
    path.write_text(content)
    with pytest.raises(SkeletonError, match=message) as caught:
        ModelMeta.load(path)
    assert str(path) in str(caught.value)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(SkeletonError, match="not found"):
        Manifest.load(tmp_path / "manifest.json")


def test_a_trials_judgement_is_read_the_same_for_the_terminal_and_the_docs():
    """One reader of a search trial's details: which way its accuracy was had, with the figures each renderer
    words; and the two renderings name the same figures."""
    import benchmarks.readme_results as docs
    from cli.main import _trial_accuracy
    from skeleton.core.reports import trial_judgement

    predicted = {
        "short_condensation_accuracy": 83.2,
        "gap_left_by_full_condensation": 0.2,
        "teacher_accuracy": 87.5,
        "predicted_from_pairs": 2,
    }
    cases = {
        "predicted": predicted,
        "gain": {
            "short_condensation_accuracy": 83.2,
            "predicted_full_condensation_accuracy": 86.0,
            "gain_of_full_condensation": 2.8,
        },
        "full": {"short_condensation_accuracy": 81.25, "full_condensation_accuracy": 86.25},
        "majority": {"short_condensation_accuracy": 50.9, "at_majority_class": True},
        "short": {"short_condensation_accuracy": 86.6},
        "alone": {},
    }
    for how, details in cases.items():
        judged = trial_judgement(details)
        assert judged.how == how
        assert judged.judged_short == (how not in ("full", "alone"))
        trial = {"value": 0.6, "accepted": True, "validation_accuracy": 86.64, "details": details}
        terminal, text = _trial_accuracy(trial), docs._trial_accuracy(trial)
        shown = ["86.64"] + ([f"{judged.short:.2f}"] if how in ("predicted", "gain", "full") else [])
        assert all(figure in terminal and figure in text for figure in shown)
    assert (trial_judgement(predicted).left, trial_judgement(predicted).pairs) == (0.2, 2)
    assert "by 2 plans" in _trial_accuracy({"validation_accuracy": 86.64, "details": predicted})
