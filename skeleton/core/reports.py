"""The JSON files a run leaves behind, as typed records.

``skeleton.json`` is :class:`ModelMeta`, ``report.json`` is :class:`CompressReport` (``skeleton
compress``) or :class:`TuneReport` (``skeleton tune``), ``onnx/manifest.json`` is :class:`Manifest`
and the report's ``export`` section is :class:`ExportSummary`; ``skeleton bench``, ``skeleton
compare`` and ``skeleton analyze`` return and write :class:`BenchReport`, :class:`CompareReport`
and :class:`AnalysisReport`. Each has ``to_dict``/``from_dict`` and
``save``/``load``; the files keep the shape they always had, so directories written before these
records existed still load. Sections that are tables of figures (per-split metrics, the search's
trials, per-variant export results) stay plain dicts inside the record.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from skeleton.core.errors import SkeletonError


def write_json(path: Path, data: dict) -> None:
    """Write JSON through a temporary file, so a reader never sees half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, default=str))
    temporary.replace(path)


@dataclass
class Record:
    """A JSON file as a dataclass: unknown keys are ignored (newer writers), fields with defaults
    may be absent (older writers), a missing required field is a clear error."""

    DESCRIPTION: ClassVar[str] = "record"
    RENAMED: ClassVar[dict[str, str]] = {}  # an old key -> the field that holds it now (older writers)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        if not isinstance(data, dict):
            raise SkeletonError(f"not a {cls.DESCRIPTION}: expected a JSON object")
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise SkeletonError(f"not a {cls.DESCRIPTION}: {', '.join(missing)} missing")
        data = {cls.RENAMED.get(k, k): v for k, v in data.items()}
        known = {f.name: f for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name, kind in cls._nested().items():
            if values.get(name) is not None:
                values[name] = kind.from_dict(values[name])
        return cls(**values)

    @classmethod
    def _nested(cls) -> dict[str, type[Record]]:
        """Fields that hold another record."""
        return {}

    def save(self, path: Path) -> None:
        write_json(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: Path):
        path = Path(path)
        if not path.is_file():
            raise SkeletonError(f"{path} not found")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise SkeletonError(f"{path} is not valid JSON: {error.msg} (line {error.lineno})") from None
        try:
            return cls.from_dict(data)
        except SkeletonError as error:
            raise SkeletonError(f"{path}: {error}") from None


def _plain(value):
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclass
class ModelMeta(Record):
    """``skeleton.json``: what :func:`skeleton.load` needs to turn texts into inputs."""

    DESCRIPTION: ClassVar[str] = "Skeleton model description (skeleton.json)"

    task: str
    base_model: str
    head: str = "cls"
    use_template: bool = True
    max_length: int = 128
    num_virtual_tokens: int | None = None
    label_names: list[str] = field(default_factory=list)
    task_spec: dict | None = None  # the task's description (TaskSpec.to_dict); None in models saved before it


@dataclass
class Manifest(Record):
    """``onnx/manifest.json``: the exported graphs, how to feed them, and their checksums."""

    DESCRIPTION: ClassVar[str] = "Skeleton ONNX manifest (manifest.json)"
    FORMAT: ClassVar[str] = "skeleton-onnx/1"
    RENAMED: ClassVar[dict[str, str]] = {"int8_candidates": "reduced_candidates"}

    task: str
    label_names: list[str]
    inputs: list[str]
    max_input_tokens: int
    variants: dict[str, dict]
    default_variant: str
    format: str = FORMAT
    outputs: list[str] = field(default_factory=lambda: ["logits"])
    opset: int | None = None
    num_virtual_tokens: int | None = None
    template_in_tokenizer: bool = True
    rejected_variants: dict[str, dict] = field(default_factory=dict)
    # every int8 and bf16 candidate built, each with its variant, runtime, precision, method and verdict
    reduced_candidates: list[dict] = field(default_factory=list)
    int8_bar: dict | None = None
    judged_on: str | None = None
    cpu: dict | None = None
    versions: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    source_sha: str | None = None  # skeleton bench's own int8 build: the slim weights it came from
    task_spec: dict | None = None  # the task's description (TaskSpec.to_dict): its pairs, separator, labels
    # the graphs chosen per use from each variant's measured "serving" figures (sentences/s end to end):
    # {"predict": variant, "serve": variant, "why": ...}; older manifests have none (default_variant serves)
    runtime_choice: dict | None = None


@dataclass
class ExportSummary(Record):
    """The ``export`` section of ``report.json``: what ``skeleton export`` wrote and measured."""

    DESCRIPTION: ClassVar[str] = "export summary"
    RENAMED: ClassVar[dict[str, str]] = {"int8_candidates": "reduced_candidates"}

    directory: str
    seconds: float
    variants: dict[str, dict]
    default_variant: str
    max_input_tokens: int
    rejected_variants: dict[str, dict] = field(default_factory=dict)
    reduced_candidates: list[dict] = field(default_factory=list)
    judged_on: str | None = None
    runtime_choice: dict | None = None  # the manifest's: the graph predict runs and the one serve runs

    @classmethod
    def of(cls, manifest: Manifest, directory: str, seconds: float) -> ExportSummary:
        return cls(
            directory=directory,
            seconds=seconds,
            variants=manifest.variants,
            default_variant=manifest.default_variant,
            max_input_tokens=manifest.max_input_tokens,
            rejected_variants=manifest.rejected_variants,
            reduced_candidates=manifest.reduced_candidates,
            judged_on=manifest.judged_on,
            runtime_choice=manifest.runtime_choice,
        )


@dataclass
class TuneReport(Record):
    """``report.json`` of ``skeleton tune`` (and of skeleton bench's rebuilt prompt-tuned model)."""

    DESCRIPTION: ClassVar[str] = "Skeleton tune report (report.json)"
    KIND: ClassVar[str] = "prompt-tuned"

    config: dict
    kind: str = KIND
    data: dict | None = None
    device: str | None = None
    # what training ran in and why (skeleton.core.precision.PrecisionChoice); None: a report from before
    training_precision: dict | None = None
    validation: dict | None = None
    test: dict | None = None
    majority_class: dict | None = None
    weak_prior: str | None = None
    training: dict | None = None
    versions: dict[str, str] = field(default_factory=dict)
    export: ExportSummary | None = None

    @classmethod
    def _nested(cls) -> dict[str, type[Record]]:
        return {"export": ExportSummary}


TEACHER_NAMES = {"prompt": "prompt-tuned", "lora": "LoRA-tuned", "full": "fine-tuned"}


def teacher_name(config: dict | None) -> str:
    """The tuned model's name for a compress config (as ``report.json`` holds it)."""
    config = config or {}
    if config.get("teacher"):
        return "teacher"
    return TEACHER_NAMES[(config.get("tune") or {}).get("trains", "prompt")]


@dataclass
class CompressReport(Record):
    """``report.json`` of ``skeleton compress``: every figure of the run.

    ``prompt_tuned`` and ``skeleton`` hold per-split metrics ({"validation": {...}, "test": {...}});
    ``accuracy_difference`` is Skeleton minus prompt-tuned in points with a 95% paired bootstrap
    interval per split; ``search`` is :meth:`~skeleton.method.search.SearchResult.to_dict`.
    """

    DESCRIPTION: ClassVar[str] = "Skeleton compress report (report.json)"
    KIND: ClassVar[str] = "skeleton"

    task: str
    model: str
    prompt_tuned: dict
    skeleton: dict
    search_value: float
    kept_fraction: float
    config: dict
    kind: str = KIND
    head: str | None = None
    device: str | None = None
    # what steps 1 and 4 trained in and why (skeleton.core.precision.PrecisionChoice); None: a report from before
    training_precision: dict | None = None
    data: dict | None = None
    seed: int | None = None
    majority_class: dict | None = None
    weak_prior: str | None = None
    accuracy_difference: dict = field(default_factory=dict)
    # the task's F1 (``f1`` or ``macro_f1``), Skeleton minus the tuned model, with its interval per split
    metric_difference: dict = field(default_factory=dict)
    removed_fraction: float | None = None
    kept_sizes: list[int] | None = None
    targets: list[str] = field(default_factory=lambda: ["ffn"])
    kept_heads: list[int] | None = None
    kept_layers: list[int] | None = None
    prompt_tokens: dict[str, int] | None = None
    template_tokens: int | None = None
    cost_model: dict | None = None
    head_weight_calibration: dict | None = None
    parameters: dict[str, int] = field(default_factory=dict)
    search: dict = field(default_factory=dict)
    ablations: dict = field(default_factory=dict)
    timings_seconds: dict[str, float] = field(default_factory=dict)
    prompt_tuning: dict | None = None  # how the prompt-tuned model was trained (None: a given prompt)
    versions: dict[str, str] = field(default_factory=dict)
    # the CPU the run was on (name, cores, the flags that decide the fastest runtime): the plan, and so the
    # speed and accuracy, depend on it
    machine: dict = field(default_factory=dict)

    @property
    def teacher_name(self) -> str:
        """What the unpruned model is called in a summary: prompt-tuned (the paper's step 1), fine-tuned,
        LoRA-tuned, or the user's teacher checkpoint."""
        return teacher_name(self.config)

    export: ExportSummary | None = None

    @classmethod
    def _nested(cls) -> dict[str, type[Record]]:
        return {"export": ExportSummary}

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        if isinstance(data, dict):  # written before the search value and step 1's training had these names
            renamed = {"kept_ratio": "search_value", "prior_training": "prompt_tuning"}
            data = {renamed.get(k, k): v for k, v in data.items() if not (k in renamed and renamed[k] in data)}
        return super().from_dict(data)


@dataclass
class BenchReport(Record):
    """``bench/bench.json`` of ``skeleton bench``: the Skeleton model against the prompt-tuned model.

    ``points`` has one row per (batch, input tokens) of the synthetic grid, each with every
    contender's latency summary and the headline (the fastest shippable Skeleton runtime against
    the prompt-tuned model's fastest runtime of all); ``end_to_end`` the same on real sentences.
    """

    DESCRIPTION: ClassVar[str] = "Skeleton bench report (bench.json)"

    directory: str
    task: str
    config: dict
    points: list[dict]
    machine: dict = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    contenders: list[dict] = field(default_factory=list)
    shapes: dict = field(default_factory=dict)
    end_to_end: list[dict] = field(default_factory=list)
    predicted_speedup: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    # the unpruned model by how it was made ("fine-tuned", "prompt-tuned", ...; :func:`teacher_name`)
    teacher: str | None = None

    def headline_range(self) -> tuple[float, float] | None:
        """The smallest and largest headline speed-up over the grid (``None`` when nothing shippable ran)."""
        values = [p["headline"]["speedup"] for p in self.points if p["headline"]]
        return (min(values), max(values)) if values else None


@dataclass
class CompareReport(Record):
    """``compare.json`` of ``skeleton compare``: every scorer on one prompt-tuned model at one kept ratio.

    ``rows`` has one row per scorer: kept fraction and widths, scoring seconds, and per-split
    metrics before (and after) condensation.
    """

    DESCRIPTION: ClassVar[str] = "Skeleton compare report (compare.json)"

    task: str
    model: str
    kept_ratio: float
    prompt_tuned: dict
    rows: list[dict]
    device: str | None = None
    prompt_fingerprint: str | None = None
    prompt_tuning_seconds: float | None = None
    majority_class: dict | None = None
    data: dict | None = None
    config: dict = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)


@dataclass
class AnalysisReport(Record):
    """``analysis/analysis.json`` of ``skeleton analyze``: suppression curves, per-layer shares of
    each scorer's top neurons, rank correlations and accuracy on extra labelled files."""

    DESCRIPTION: ClassVar[str] = "Skeleton analysis report (analysis.json)"

    task: str
    model: str
    neurons: int
    layer_widths: list[int]
    prompt_tuned_validation_accuracy: float
    suppression: dict[str, list[dict]]
    device: str | None = None
    validation_rows: int | None = None
    run_scorer: str | None = None
    scoring_seconds: dict[str, float] = field(default_factory=dict)
    top_percent: float | None = None
    top_neurons_per_layer: dict[str, list[float]] = field(default_factory=dict)
    skeleton_kept: dict | None = None
    spearman: dict[str, dict[str, float]] = field(default_factory=dict)
    extra_data: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)


def load_report(path: Path) -> CompressReport | TuneReport:
    """A ``report.json`` of either kind, by its ``kind``."""
    path = Path(path)
    if not path.is_file():
        raise SkeletonError(f"{path} not found")
    try:
        kind = json.loads(path.read_text()).get("kind")
    except (json.JSONDecodeError, AttributeError):
        kind = None
    return (TuneReport if kind == TuneReport.KIND else CompressReport).load(path)


__all__ = [
    "AnalysisReport",
    "BenchReport",
    "CompareReport",
    "CompressReport",
    "ExportSummary",
    "Manifest",
    "ModelMeta",
    "Record",
    "TuneReport",
    "load_report",
    "speed_text",
    "trial_judgement",
    "TrialJudgement",
    "write_json",
]


def speed_text(timing: dict) -> str:
    """``"measured 2.4x at 1x64, the slowest shape (predicted 2.3x)"`` of a trial's or the shipped plan's
    timing; empty when it was not timed."""
    if "measured_speedup" not in timing:
        return ""
    slowest = timing["slowest_shape"]
    measured = timing["measured_speedup"][slowest]
    predicted = timing["predicted_speedup"][slowest]
    return f"measured {measured:.2f}x at {slowest}, the slowest shape (predicted {predicted:.2f}x)"


@dataclass
class TrialJudgement:
    """How a search trial's validation accuracy was had, read from its ``details`` once for the terminal's table
    and the docs' text, which word it each their own way.

    Attributes:
        how: ``predicted`` (the full condensation's accuracy predicted from a short one and the plans condensed
            both ways), ``gain`` (predicted as the short one plus an added gain: reports of code before
            2026-12-04), ``full`` (condensed in full), ``majority`` (short, at the majority class), ``short``
            (short, over the threshold) or ``alone`` (no short condensation: the trial's own training).
        short: the short condensation's validation accuracy (all but ``alone``).
        teacher, left, pairs: for ``predicted``: the teacher's accuracy, the share of the short condensation's
            gap to it left after a full one, and how many plans condensed both ways that share comes from.
        gain: for ``gain``: the added gain.
    """

    how: str
    short: float | None = None
    teacher: float | None = None
    left: float | None = None
    pairs: int = 1
    gain: float | None = None

    @property
    def judged_short(self) -> bool:
        """Whether the trial's validation predictions are a short condensation's (not a full one's)."""
        return self.how not in ("full", "alone")


def trial_judgement(details: dict) -> TrialJudgement:
    """:class:`TrialJudgement` of a trial's ``details`` (``report.json``'s ``search.trials[i].details``)."""
    short = details.get("short_condensation_accuracy")
    if "gap_left_by_full_condensation" in details:
        left, pairs = details["gap_left_by_full_condensation"], details.get("predicted_from_pairs", 1)
        return TrialJudgement("predicted", short, details.get("teacher_accuracy"), left, pairs)
    if "predicted_full_condensation_accuracy" in details:
        return TrialJudgement("gain", short, gain=details["gain_of_full_condensation"])
    if "full_condensation_accuracy" in details:
        return TrialJudgement("full", short)
    if details.get("at_majority_class"):
        return TrialJudgement("majority", short)
    return TrialJudgement("alone" if short is None else "short", short)
