"""Task descriptions: what a task's data looks like, its labels, template, verbalizer and metric.

A task is data, not code. The five built-in tasks are YAML descriptions in ``task_descriptions/``;
a user's own task is the same kind of description, read from ``--task-file`` (YAML or JSON) or built
from ``--text-column`` / ``--label-column`` beside ``--data FILE``. Every Skeleton model carries its
task's description (``TaskSpec.to_dict``), so predict, serve and Triton never need the registry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from skeleton.core.errors import SkeletonError

DESCRIPTIONS_DIR = Path(__file__).with_name("task_descriptions")
SINGLE_FIELDS = ("text",)
PAIR_FIELDS = ("text1", "text2")
# several text columns read as one text are joined with this (a newline would not survive predict's
# one-text-per-line input)
DEFAULT_SEPARATOR = ". "
POSITIVE_F1 = "f1"  # F1 of label 1, for two classes
MACRO_F1 = "macro_f1"  # the mean of every class's F1 (each class's F1 is reported too)


@dataclass(frozen=True)
class TaskSpec:
    """Everything the toolkit needs to know about one classification task.

    Attributes:
        name: the task's name (``--task sst2``; a user's task: the description's ``name``, else the file's stem).
        text_fields: the canonical text columns (``text``; ``text1``, ``text2`` for pairs).
        label_names: label names, index = label id.
        template: the paper's instruction template; ``{text}`` / ``{text1}``/``{text2}`` are filled
            with the text fields and ``<mask>`` becomes the tokenizer's mask token (mlm head).
        verbalizer: one word per label that the mlm head scores at the mask position.
        hub_path / hub_name: ``datasets.load_dataset(hub_path, hub_name)``; ``None``: no hub copy.
        hub_columns: hub column -> canonical column.
        hub_test_split: the labelled split reported as the test split.
        local_train: file name of the training split in a local data directory.
        local_test: candidate file names of the labelled test split, first found wins.
        local_columns: local TSV header -> canonical column (files may use GLUE or original headers).
        metrics: metrics reported besides accuracy: ``f1`` (of label 1) or ``macro_f1`` (with each class's F1).
        validation_rows: the default of ``DataConfig.validation_rows``: ``whole`` when the train
            split holds phrases cut from its own sentences (SST-2), so that validation is sentences.
        tune, condense: the task's recipe: the ``TrainConfig`` fields in which its prompt tuning and
            its condensation depart from the defaults, chosen on validation with the default model
            (``benchmarks/sweeps/tuning_sweep_<task>_minilm.md``). A setting given explicitly wins.
        tune_backbone: per tuned-backbone kind (``full``, ``lora``), the ``TrainConfig`` fields in which
            step 1 departs from that kind's recipe, chosen on validation.
        condense_backbone: likewise for condensation, per kind of what it trains (``full``, ``lora``).
        fast_search: the task's default of ``CompressConfig.fast_search``.
        head: the head ``--head auto`` picks for the task (chosen on validation with the default
            model), or ``None``: the checkpoint decides (``modeling.resolve_head``).
        text_columns: a user's file: the columns holding the text (joined with ``separator``, or read
            as a pair when ``text_fields`` are two).
        label_column: a user's file: the column holding the label.
        separator: what joins several text columns into one text (at predict time too).
    """

    name: str
    text_fields: tuple[str, ...]
    label_names: tuple[str, ...]
    template: str
    verbalizer: tuple[str, ...]
    hub_path: str | None = None
    hub_name: str | None = None
    hub_columns: dict[str, str] = field(default_factory=dict)
    hub_test_split: str = "test"
    local_train: str = "train.tsv"
    local_test: tuple[str, ...] = ("dev.tsv", "test.tsv", "validation.tsv")
    local_columns: dict[str, str] = field(default_factory=dict)
    metrics: tuple[str, ...] = ()
    validation_rows: str = "all"
    tune: Mapping[str, Any] = field(default_factory=dict)
    condense: Mapping[str, Any] = field(default_factory=dict)
    tune_backbone: Mapping[str, Any] = field(default_factory=dict)
    condense_backbone: Mapping[str, Any] = field(default_factory=dict)
    fast_search: bool = False
    head: str | None = None
    text_columns: tuple[str, ...] = ()
    label_column: str = "label"
    separator: str = DEFAULT_SEPARATOR

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def is_pair(self) -> bool:
        return len(self.text_fields) == 2

    @property
    def joined(self) -> bool:
        """Whether several of a user's text columns are read as one text."""
        return len(self.text_columns) > len(self.text_fields)

    def to_dict(self) -> dict:
        """Everything about the task, as JSON (saved with every model it trains)."""
        record = asdict(self)
        record["tune"], record["condense"] = dict(self.tune), dict(self.condense)
        record["tune_backbone"] = dict(self.tune_backbone)
        record["condense_backbone"] = dict(self.condense_backbone)
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> TaskSpec:
        """The spec :meth:`to_dict` wrote (unknown keys from newer versions are ignored)."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in record.items() if key in known}
        for key in ("text_fields", "label_names", "verbalizer", "local_test", "metrics", "text_columns"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    def with_labels(self, label_names: tuple[str, ...]) -> TaskSpec:
        """This task with the labels found in its data (a user's task names none up front)."""
        return replace(
            self,
            label_names=label_names,
            verbalizer=self.verbalizer or tuple(name.replace("_", " ") for name in label_names),
            metrics=self.metrics or default_metrics(len(label_names)),
        )


def default_metrics(num_labels: int) -> tuple[str, ...]:
    """F1 of label 1 for two classes, macro-F1 (and each class's F1) for more."""
    return (POSITIVE_F1,) if num_labels == 2 else (MACRO_F1,)


# the description keys of a user's task (beside TaskSpec's own field names)
DESCRIPTION_KEYS = {
    "name", "text_columns", "pair", "label_column", "labels", "template", "verbalizer", "metrics",
    "separator", "head", "tune", "condense", "tune_backbone", "condense_backbone", "fast_search", "validation_rows",
    "text_fields", "hub", "local",
}  # fmt: skip


def describe(record: Mapping[str, Any], source: str = "task description") -> TaskSpec:
    """A ``TaskSpec`` from a description (the YAML/JSON form of the built-in tasks and of ``--task-file``).

    A built-in task names its canonical ``text_fields`` and where its data lives (``hub``, ``local``); a
    user's task names its file's ``text_columns`` (``pair: true`` reads two as a pair, else they are
    joined with ``separator``) and ``label_column``; its ``labels`` may be left out (found in the data),
    its ``template`` names the columns (``{headline}``), or ``{text}`` for joined columns.
    """
    unknown = sorted(set(record) - DESCRIPTION_KEYS)
    if unknown:
        raise SkeletonError(
            f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(DESCRIPTION_KEYS))}"
        )
    columns = tuple(str(c) for c in record.get("text_columns") or ())
    text_fields = _text_fields(record, columns, source)
    labels = tuple(str(name) for name in record.get("labels") or ())
    if len(set(labels)) != len(labels):
        raise SkeletonError(f"{source}: labels repeat a name: {', '.join(labels)}")
    verbalizer = tuple(str(word) for word in record.get("verbalizer") or ())
    if verbalizer and labels and len(verbalizer) != len(labels):
        raise SkeletonError(f"{source}: {len(verbalizer)} verbalizer words for {len(labels)} labels")
    template = _template(record.get("template"), columns, text_fields, source)
    hub = record.get("hub") or {}
    local = record.get("local") or {}
    spec = TaskSpec(
        name=str(record.get("name") or "task"),
        text_fields=text_fields,
        label_names=labels,
        template=template,
        verbalizer=verbalizer,
        hub_path=hub.get("path"),
        hub_name=hub.get("name"),
        hub_columns=dict(hub.get("columns") or {}),
        hub_test_split=hub.get("test_split", "test"),
        local_train=local.get("train", "train.tsv"),
        local_test=tuple(local.get("test") or ("dev.tsv", "test.tsv", "validation.tsv")),
        local_columns={str(k): v for k, v in (local.get("columns") or {}).items()},
        metrics=tuple(record.get("metrics") or ()),
        validation_rows=record.get("validation_rows", "all"),
        tune=dict(record.get("tune") or {}),
        condense=dict(record.get("condense") or {}),
        tune_backbone=dict(record.get("tune_backbone") or {}),
        condense_backbone=dict(record.get("condense_backbone") or {}),
        fast_search=bool(record.get("fast_search", False)),
        head=record.get("head"),
        text_columns=columns,
        label_column=str(record.get("label_column", "label")),
        separator=str(record.get("separator", DEFAULT_SEPARATOR)),
    )
    for metric in spec.metrics:
        if metric not in (POSITIVE_F1, MACRO_F1):
            raise SkeletonError(f"{source}: unknown metric {metric!r}; choose {POSITIVE_F1} or {MACRO_F1}")
    # a built-in task names its verbalizer and metrics; a user's may leave them to the labels
    return spec.with_labels(labels) if labels and columns else spec


def _text_fields(record: Mapping[str, Any], columns: tuple[str, ...], source: str) -> tuple[str, ...]:
    """A description's canonical text fields: a built-in task's own, or one text (joined columns) or a pair."""
    if "text_fields" in record:
        return tuple(record["text_fields"])
    if not columns:
        raise SkeletonError(f"{source}: name the text column(s) ('text_columns' in a task file, or --text-column)")
    if not record.get("pair", False):
        return SINGLE_FIELDS
    if len(columns) != 2:
        raise SkeletonError(f"{source}: a pair task reads exactly two text columns, got {len(columns)}")
    return PAIR_FIELDS


def _template(template: str | None, columns: tuple[str, ...], text_fields: tuple[str, ...], source: str) -> str:
    """The template in canonical fields: a user's ``{column}`` placeholders become ``{text}`` / ``{text1}``."""
    if template is None:
        if text_fields == PAIR_FIELDS:
            return "Text1: {text1}. Text2: {text2}. The relation of the two texts is <mask>."
        return "Text: {text}. The category of the text is <mask>."
    template = str(template)
    if "<mask>" not in template:
        raise SkeletonError(f"{source}: the template needs a <mask> where the label word goes")
    if len(columns) == len(text_fields):
        for column, canonical in zip(columns, text_fields, strict=True):
            template = template.replace("{" + column + "}", "{" + canonical + "}")
    placeholders = set(re.findall(r"\{([^{}]*)\}", template))
    if placeholders != set(text_fields):
        wanted = ", ".join("{" + f + "}" for f in (columns if len(columns) == len(text_fields) else text_fields))
        raise SkeletonError(f"{source}: the template must name {wanted}, and nothing else; it names {template!r}")
    return template


def description_record(path: str | Path) -> dict:
    """The keys of a task description file (``.yaml``, ``.yml`` or ``.json``), ``name`` defaulting to the
    file's stem; one clear line when it is not one."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SkeletonError(f"task file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
        record = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as error:
        raise SkeletonError(f"{path}: not a task description ({str(error).splitlines()[0]})") from None
    if not isinstance(record, dict):
        raise SkeletonError(f"{path}: a task description is a mapping of keys (name, text_columns, ...)")
    record.setdefault("name", path.stem)
    return record


def read_description(path: str | Path) -> TaskSpec:
    """The task a description file describes."""
    return describe(description_record(path), str(path))


TASKS: dict[str, TaskSpec] = {path.stem: read_description(path) for path in sorted(DESCRIPTIONS_DIR.glob("*.yaml"))}


def get_task(name: str) -> TaskSpec:
    """Look a built-in task up by name, with a one-line error listing the known tasks."""
    key = name.strip().lower().replace("-", "_")
    if key not in TASKS:
        raise SkeletonError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[key]


def saved_task(name: str, record: Mapping[str, Any] | None) -> TaskSpec:
    """The task a model was trained on: the description saved with it, or (models saved before they
    carried one) the built-in task of that name."""
    return TaskSpec.from_dict(record) if record else get_task(name)
