"""Every stage's settings, in one light module: the library's defaults, which the CLI reads
(``<Stage>Config`` for tune, compress, export, bench, serve, Triton, compare and analyze).

Nothing here imports torch, transformers or datasets, so ``skeleton --help`` stays quick and the
command line's option defaults are these dataclasses' defaults: the CLI and the library run the same
experiment. Cross-field checks in ``__post_init__`` raise a ``ValueError`` naming the field.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from skeleton.core.errors import SkeletonError
from skeleton.core.file_names import VARIANT_FILES
from skeleton.core.tasks import TaskSpec, describe, description_record, get_task, read_description

DATA_FORMATS = ("csv", "tsv", "json", "jsonl", "parquet")
# the DataConfig fields that only describe a user's file
USER_DATA_FIELDS = ("data_format", "text_columns", "pair_column", "label_column", "test_data")
VALIDATION_ROWS = ("all", "whole")
SCORERS = ("attribution", "activation", "gradient", "random", "skill", "lca")  # the scorer registry's names, in order
TARGETS = ("ffn", "ffn-out", "heads", "layers")  # what the search may remove
TRAINS = ("prompt", "lora", "full")  # what condensation trains besides the prompt and head (see TrainConfig)
TRAINING_PRECISIONS = ("fp32", "bf16")  # what training steps run in (see TrainConfig.precision)
PRECISIONS = ("auto", *TRAINING_PRECISIONS)  # what tune and compress may be asked to train in
INT8_KINDS = ("dynamic", "dynamic-fused", "static")  # the quantisation methods that compete for the int8 graph
TORCH_PRECISIONS = ("fp32", "bf16", "fp16")  # the PyTorch runtime: fp32, or autocast to bf16 (CPU) / fp16 (CUDA)
TORCH_RUNTIMES = tuple(f"torch-{precision}" for precision in TORCH_PRECISIONS)
ONNX_RUNTIMES = ("onnx-fp32", "onnx-optimized", "onnx-int8")
OPENVINO_PRECISIONS = ("fp32", "bf16", "int8")  # OpenVINO: f32 or bf16 inference precision, or an NNCF int8 graph
OPENVINO_RUNTIMES = tuple(f"openvino-{precision}" for precision in OPENVINO_PRECISIONS)
RUNTIME_NAMES = TORCH_RUNTIMES + ONNX_RUNTIMES + OPENVINO_RUNTIMES
# what --runtime takes besides RUNTIME_NAMES: the graph the export chose for the use, the fastest onnxruntime one
# "auto": the graph the export chose for the use (predict: fastest at batch 1; serve: least behind at any batch)
CHOSEN_RUNTIMES = ("auto", "onnx")
DEVICES = "auto, cpu, cuda, cuda:N or mps"
NNCF_METHODS = ("default", "no-smoothquant", "smoothquant-0.5")  # the NNCF int8 candidates (see deploy.openvino)
# the grid a speed-up must hold at: batch {1, 8, 32} x input tokens {16, 64, 128} (bench reports it; the search's
# objective is its slowest point)
SPEEDUP_GRID = tuple((batch, tokens) for batch in (1, 8, 32) for tokens in (16, 64, 128))
QUICK_BATCH_SIZES = (1, 32)
QUICK_LENGTHS = (16, 128)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (localhost or a loopback address)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def runtime_of(variant: str) -> str:
    """The runtime a manifest variant runs under: OpenVINO's variants are named by their runtime, the others
    (``fp32``, ``optimized``, ``int8``) by their graph, run in onnxruntime (``onnx-int8``)."""
    return variant if variant in OPENVINO_RUNTIMES else f"onnx-{variant}"


def runtime_named(name: str, option: str = "runtime") -> str:
    """A runtime name as ``--runtime`` takes it, from a runtime name or a manifest variant name (``int8``
    is ``onnx-int8``); a ``ValueError`` naming ``option`` for anything else."""
    if name in RUNTIME_NAMES or name in CHOSEN_RUNTIMES:
        return name
    if name in VARIANT_FILES:
        return runtime_of(name)
    raise ValueError(f"{option} must be one of {', '.join(RUNTIME_NAMES + CHOSEN_RUNTIMES)}, got {name!r}")


def check_device(name: str) -> str:
    """``name`` if it names a device (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``), else a ``ValueError``;
    checked here, before any library loads, whether or not the runtime asked for uses torch."""
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", name.strip().lower()):
        raise ValueError(f"device must be {DEVICES}, got {name!r}")
    return name


def check_precision(name: str) -> str:
    """``name`` if it is one of :data:`PRECISIONS`, else a ``ValueError``."""
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    return name


def _at_least_one(config, *names: str) -> None:
    """Each named field is at least 1 (an optional one may be ``None``)."""
    for name in names:
        value = getattr(config, name)
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")


@dataclass
class DataConfig:
    """Where the data comes from and how much of it is used.

    Attributes:
        task: a built-in task (``skeleton tasks``); a user's file (``data_file``) describes its own.
        data_dir: a local directory of GLUE-style TSV files, either the task's own folder or a root
            holding ``<task>/``; ``None`` falls back to ``$SKELETON_DATA_DIR``, then to the hub.
        train_samples: subsample the (post hold-out) training split to this many rows.
        validation_samples: subsample the held-out validation split to this many rows.
        test_samples: subsample the test split (quick runs only; reports then say so).
        validation_fraction: the share of train held out as validation (0.1 in the paper).
        validation_rows: which held-out rows may be validation rows: ``all``, or ``whole``: only rows
            no other training row contains, and every training row a validation row contains leaves
            training (SST-2's train split holds its sentences and every phrase cut from them: its
            validation would otherwise be 43% short phrases, and their sentences' phrases would be
            trained on). ``None``: the task's own setting (``whole`` for sst2, else ``all``).
        validation_min_words: validation rows need at least this many words in every text field.
        validation_data: a file to validate on instead of a hold-out, in the training data's format (a
            built-in task's TSV; a user's file like ``data_file``); the training rows it repeats (or, with
            ``validation_rows`` ``whole``, contains) leave training.
        test_data: a user's labelled test file, in ``data_file``'s format (default: held out of ``data_file``).
        data_file: a user's labelled data (CSV, TSV, JSON, JSON Lines or Parquet) instead of a built-in task;
            the task is then described by ``task_file`` and the column options.
        data_format: ``csv``, ``tsv``, ``json``, ``jsonl`` or ``parquet``; default: from the file's extension.
        text_columns: the column(s) of ``data_file`` holding the text; several are joined into one text
            (with ``'. '``) unless ``pair_column`` is given.
        pair_column: a second text column read with the first as a pair (as MRPC's two sentences).
        label_column: the column of ``data_file`` holding the labels: strings or integers, two classes or
            more, named in sorted order unless the task file lists them (default ``label``).
        task_file: a task description (YAML or JSON: ``text_columns``, ``pair``, ``label_column``,
            ``labels``, ``template``, ``metrics``...), the form the built-in tasks are written in.
        test_fraction: the share of ``data_file`` held out as the test split when no ``test_data`` is
            given (validation takes ``validation_fraction``); both stratified by label and seeded.
        max_rows: refuse a ``data_file`` of more rows than this (``None``: no limit).
        seed: seeds the hold-out and the subsampling.
    """

    task: str = "sst2"
    data_dir: str | None = None
    train_samples: int | None = 20000
    validation_samples: int | None = 2000
    test_samples: int | None = None
    validation_fraction: float = 0.1
    validation_rows: str | None = None
    validation_min_words: int = 0
    validation_data: str | None = None
    test_data: str | None = None
    data_file: str | None = None
    data_format: str | None = None
    text_columns: list[str] = field(default_factory=list)
    pair_column: str | None = None
    label_column: str | None = None
    task_file: str | None = None
    test_fraction: float = 0.1
    max_rows: int | None = None
    seed: int = 42

    def __post_init__(self) -> None:
        if self.validation_rows not in (None, *VALIDATION_ROWS):
            raise ValueError(
                f"validation_rows must be one of {', '.join(VALIDATION_ROWS)}, got {self.validation_rows!r}"
            )
        if self.validation_min_words < 0:
            raise ValueError(f"validation_min_words must be non-negative, got {self.validation_min_words}")
        for name in ("train_samples", "validation_samples", "test_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be a positive number of rows, got {value}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must lie in (0, 1), got {self.validation_fraction}")
        if not 0.0 < self.test_fraction < 1.0 or self.validation_fraction + self.test_fraction >= 1.0:
            raise ValueError(
                f"test_fraction must lie in (0, 1) and leave rows to train beside validation_fraction, "
                f"got {self.test_fraction}"
            )
        if self.data_format not in (None, *DATA_FORMATS):
            raise ValueError(f"data_format must be one of {', '.join(DATA_FORMATS)}, got {self.data_format!r}")
        if self.data_file is None:
            given = [name for name in USER_DATA_FIELDS if getattr(self, name)]
            if given:
                raise ValueError(f"{', '.join(given)} describe a user's file: give data_file too")
        if self.pair_column and len(self.text_columns) > 1:
            raise ValueError("pair_column reads two texts as a pair: give one text_columns beside it, not several")
        _at_least_one(self, "max_rows")

    @classmethod
    def from_dict(cls, record: dict) -> DataConfig:
        """The settings a report's ``config.data`` holds (reports before ``validation_data`` said
        ``validation_file``)."""
        record = dict(record)
        if "validation_file" in record:
            record["validation_data"] = record.pop("validation_file")
        return cls(**record)

    def task_spec(self) -> TaskSpec:
        """The task described: a built-in task, the task file, or a user's file's columns. A user's task
        learns its labels from its data (``load_task_data``)."""
        if self.data_file is None:
            return read_description(self.task_file) if self.task_file else get_task(self.task)
        if not self.task_file and not self.text_columns:
            raise SkeletonError(f"{self.data_file}: name the text column(s) with --text-column")
        record = description_record(self.task_file) if self.task_file else {"name": Path(self.data_file).stem}
        if self.text_columns:
            columns = [*self.text_columns, *([self.pair_column] if self.pair_column else [])]
            if (list(record.get("text_columns") or []), bool(record.get("pair"))) != (columns, bool(self.pair_column)):
                record.pop("template", None)  # the task file's template reads other columns
            record.update(text_columns=columns, pair=bool(self.pair_column))
        if self.label_column:
            record["label_column"] = self.label_column
        return describe(record, self.task_file or "--text-column/--label-column")


@dataclass
class ModelConfig:
    """Which backbone, head and prompt.

    Attributes:
        model: a hub id, a local path, or ``default`` (the packaged all-MiniLM-L6-v2).
        head: ``cls`` (mean-pooled linear head, trained with the prompt), ``mlm`` (the paper's
            verbalizer at the mask token), ``bi-encoder`` (pair tasks: each sentence encoded on its own
            behind the prompt, a linear head on [u, v, |u - v|, u * v]) or ``auto`` (the task's recipe
            where it names a head, else mlm when the checkpoint has an MLM head, else cls).
        num_virtual_tokens: soft prompt length (0: no soft prompt, a plain classifier; ``None``: 20 for
            ``--tune prompt``, 0 when the backbone tunes or a teacher checkpoint is given).
        prompt_init: ``text`` (from the task's instruction words) or ``random``.
        max_length: longest text in tokens (template included); longer texts are truncated.
        use_template: wrap texts in the task's instruction template (always for ``mlm``, which reads
            the template's mask token; for ``cls`` it measured 2 points better on SST-2; never for
            ``bi-encoder``, which encodes each sentence bare).
    """

    model: str = "default"
    head: str = "auto"
    num_virtual_tokens: int | None = None
    prompt_init: str = "text"
    max_length: int = 128
    use_template: bool = True

    def __post_init__(self) -> None:
        if self.num_virtual_tokens is not None and self.num_virtual_tokens < 0:
            raise ValueError(
                f"num_virtual_tokens must not be negative (0: no soft prompt), got {self.num_virtual_tokens}"
            )
        if self.prompt_init not in ("text", "random"):
            raise ValueError(f"prompt_init must be text or random, got {self.prompt_init!r}")
        if self.max_length < 8:
            raise ValueError(f"max_length must be at least 8, got {self.max_length}")

    @property
    def prompt_tokens(self) -> int:
        """The soft prompt's length: ``num_virtual_tokens``, or the paper's 20 when it is not set."""
        return DEFAULT_PROMPT_TOKENS if self.num_virtual_tokens is None else self.num_virtual_tokens

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_PROMPT_TOKENS = 20  # the soft prompt of --tune prompt (the paper's setting)
HEAD_INITS = ("random", "probe")


@dataclass
class TrainConfig:
    """How the soft prompt (and the cls head) are trained; the backbone stays frozen.

    Attributes:
        epochs: passes over the training split (early stopping may end sooner).
        steps: the budget in optimiser steps instead (overrides ``epochs`` and the floor below), so a
            small data set gets as many updates as a large one; early stopping still ends it sooner.
        min_steps: a floor: at least this many optimiser steps, however few ``epochs`` make (a small
            training split is passed over more often); early stopping may still end it sooner.
        batch_size: training batch size.
        lr: AdamW learning rate of the soft prompt.
        head_lr: AdamW learning rate of the cls head.
        weight_decay: AdamW weight decay of the head (never of the prompt).
        warmup_ratio: share of steps with linear warm-up; then linear decay to zero.
        evals_per_epoch: validation passes per epoch, for early stopping and best-state selection.
        patience: stop after this many validation passes without a better accuracy.
        eval_batch_size: batch size of evaluation passes.
        seed: seeds shuffling and dropout.
        max_samples: train on a seeded subset of at most this many training rows (``None``: all). In
            knowledge condensation, more than the training split holds adds that many more of the task's
            training rows, those ``--train-samples`` left out, labelled by the teacher, to each full condensation
            (search trials keep the training split).
        backbone_dropout: keep the frozen backbone's dropout active while training the prompt.
        head_init: ``random``, or ``probe``: start the cls head from a logistic-regression probe fitted
            on the pooled features of the prompted model (its L2 strength chosen on validation), so
            training begins at least at the probe's accuracy (LP-FT, Kumar et al. 2022).
        trains: what trains besides the prompt and head: ``prompt`` (nothing: the frozen backbone of
            the paper), ``lora`` (peft LoRA adapters on every linear layer of the encoder, merged into
            the weights afterwards) or ``full`` (every encoder weight; the embeddings stay frozen).
            Either way the result is a plain model of the same shapes.
        backbone_lr: AdamW learning rate of what trains in the backbone (LoRA adapters or encoder weights).
        lora_rank: the LoRA adapters' rank (their alpha is twice it).
        distill: weight of the distillation loss, the KL divergence to the teacher's
            temperature-softened logits (computed once per training row); the cross-entropy with the
            labels takes the rest. 0: labels alone.
        temperature: the distillation temperature (the KL term is scaled by its square).
        precision: what the training steps run in: ``fp32``, or ``bf16`` (autocast: bf16 matrix products,
            fp32 weights, optimiser and loss); ``compress`` and ``tune`` set it from their ``precision``
            (:mod:`skeleton.core.precision`). Evaluation passes run in fp32 either way.
    """

    epochs: float = 1.0
    steps: int | None = None
    min_steps: int | None = None
    batch_size: int = 32
    lr: float = 3e-2
    head_lr: float = 1e-2
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    evals_per_epoch: int = 2
    patience: int = 3
    eval_batch_size: int = 128
    seed: int = 42
    max_samples: int | None = None
    backbone_dropout: bool = False
    head_init: str = "random"
    trains: str = "prompt"
    backbone_lr: float = 1e-4
    lora_rank: int = 8
    distill: float = 0.0
    temperature: float = 2.0
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.precision not in TRAINING_PRECISIONS:
            raise ValueError(f"precision must be fp32 or bf16, got {self.precision!r}")
        if self.trains not in TRAINS:
            raise ValueError(f"trains must be one of {', '.join(TRAINS)}, got {self.trains!r}")
        if not 0 <= self.distill <= 1:
            raise ValueError(f"distill must lie in [0, 1], got {self.distill}")
        if self.temperature <= 0 or self.backbone_lr <= 0:
            raise ValueError("temperature and backbone_lr must be positive")
        _at_least_one(self, "lora_rank")
        if self.epochs <= 0:
            raise ValueError(f"epochs must be positive, got {self.epochs}")
        if self.head_init not in HEAD_INITS:
            raise ValueError(f"head_init must be one of {', '.join(HEAD_INITS)}, got {self.head_init!r}")
        _at_least_one(
            self, "steps", "min_steps", "batch_size", "evals_per_epoch", "patience", "eval_batch_size", "max_samples"
        )
        if self.lr <= 0 or self.head_lr <= 0:
            raise ValueError("lr and head_lr must be positive")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must lie in [0, 1), got {self.warmup_ratio}")

    def planned_steps(self, rows: int) -> int:
        """The optimiser steps a training run on ``rows`` rows is given (early stopping may end it sooner)."""
        rows = rows if self.max_samples is None else min(rows, self.max_samples)
        return self.steps or max(self.min_steps or 1, math.ceil(self.epochs * math.ceil(rows / self.batch_size)))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SearchConfig:
    """Settings of the search over the search value (a kept ratio, or a latency fraction).

    Attributes:
        margin: accepted accuracy drop on the validation split, in points.
        step: grid step of search values.
        max_trials: most search values tried.
        min_ratio: the smallest search value on the grid.
        confidence: when set (e.g. 0.9), a search value is accepted only when the upper end of the paired
            bootstrap interval of its accuracy drop, at this level, stays within ``margin``;
            ``None`` accepts on the observed drop alone (the paper's rule). Either way every trial
            reports its interval.
        target_speedup: prune until the speed-up against the teacher, predicted by the cost model refitted
            to pruned models timed on the table's runtime, reaches this at every shape of ``cost_shapes``
            (``--shapes``; the trial's pruned model is timed too, and the report gives both).
        within_margin: with ``target_speedup``, search the latency fractions at or below its own
            for the fastest model within ``margin`` (without it, the target model is the answer,
            and the report says how much accuracy it keeps).
    """

    margin: float = 1.0
    step: float = 0.05
    max_trials: int = 5
    min_ratio: float = 0.05
    confidence: float | None = None
    target_speedup: float | None = None
    within_margin: bool = False

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ValueError(f"margin must be non-negative, got {self.margin}")
        if not 0 < self.step < 1:
            raise ValueError(f"step must lie in (0, 1), got {self.step}")
        _at_least_one(self, "max_trials")
        if not 0 < self.min_ratio < 1:
            raise ValueError(f"min_ratio must lie in (0, 1), got {self.min_ratio}")
        if self.confidence is not None and not 0 < self.confidence < 1:
            raise ValueError(f"confidence must lie in (0, 1), got {self.confidence}")
        if self.target_speedup is not None and self.target_speedup <= 1.0:
            raise ValueError(f"target_speedup must exceed 1, got {self.target_speedup}")
        if self.within_margin and self.target_speedup is None:
            raise ValueError("within_margin needs target_speedup")

    def threshold(self, teacher_accuracy: float) -> float:
        """The lowest validation accuracy a search value may reach and be accepted (without ``confidence``)."""
        return teacher_accuracy - self.margin

    @property
    def target_latency_fraction(self) -> float | None:
        """The predicted latency fraction ``target_speedup`` asks for."""
        return None if self.target_speedup is None else round(1.0 / self.target_speedup, 6)

    def grid(self) -> list[float]:
        """Candidate kept ratios (or latency fractions) below 1.0, ascending. With a target speed-up:
        its latency fraction alone, or with ``within_margin`` the fractions below it and it as the
        largest."""
        if self.target_latency_fraction is not None and not self.within_margin:
            return [self.target_latency_fraction]
        count = int(math.floor((1.0 - self.min_ratio) / self.step + 1e-9))
        ratios = [round(self.min_ratio + i * self.step, 6) for i in range(count + 1)]
        if self.target_latency_fraction is not None:
            return [r for r in ratios if r < self.target_latency_fraction - 1e-9] + [self.target_latency_fraction]
        return [r for r in ratios if r < 1.0 - 1e-9]

    def to_dict(self) -> dict:
        return asdict(self)


# what step 1 (prior knowledge injection) trains with for each --tune kind, over the task's recipe:
# the soft prompt alone keeps the recipe as it was; LoRA (rank 16 on every encoder linear, lr 1e-3)
# and full fine-tuning (lr 5e-5) with the head at 1e-3 and 10% warm-up are the settings measured in
# issue 37 (SST-2, 20,000 rows, one epoch: validation 86.85 and 87.15 against the prompt's 82.60). One epoch
# stays on a small file too: on news.csv three epochs validated 90.52 against one's 88.85 (+1.66, -0.33 to
# +3.83; benchmarks/sweeps/news_step1_budget/), but that teacher compressed to nothing within the margin
# (every plan condensed to 88.35 or 88.52 against its 89.52 bar; kept whole, 17 min into the run), where one epoch's
# shipped 3 of 6 layers at 88.02 in 10 min. SST-2 and MRPC fine-tune at lr 1e-4, validated on each (their
# descriptions, tune_backbone).
TUNE_RECIPES = {
    "prompt": {},
    "lora": {"backbone_lr": 1e-3, "lora_rank": 16, "head_lr": 1e-3, "warmup_ratio": 0.1},
    "full": {"backbone_lr": 5e-5, "head_lr": 1e-3, "warmup_ratio": 0.1},
}
DEFAULT_TUNE = "full"
# the head --head auto takes when the backbone tunes: the mean-pooled linear head. Chosen on validation
# (SST-2, one epoch of full fine-tuning, code 1140469): the fine-tuned teachers are alike (86.90 against the
# family's sequence head's 86.40, +0.50, interval -0.30 to +1.30), but the mean-pooled one compresses:
# its 2x plan condensed to 86.20 where the sequence head's lost five points (81.15; benchmarks/results/LOG.md).
# --head sequence gives a plain transformers classifier (skeleton save-transformers).
TUNED_HEAD = "cls"
TEACHER_HEAD = "sequence"  # a given checkpoint teaches with its own head


def tuned_teacher(trains: str, teacher: str | None) -> bool:
    """Whether the teacher's head was trained with its backbone (a tuned backbone, or a given checkpoint),
    so condensation trains that head at the backbone's rate."""
    return trains != "prompt" or bool(teacher)


def resolve_model(model: ModelConfig, trains: str, teacher: str | None = None) -> ModelConfig:
    """The model settings step 1 runs with: a soft prompt of 20 tokens for ``--tune prompt``, none when
    the backbone tunes or a teacher checkpoint teaches (unless ``num_virtual_tokens`` says otherwise); a
    teacher's own head and no prompt."""
    if teacher is not None:
        if model.num_virtual_tokens:
            raise ValueError("a teacher checkpoint has no soft prompt: drop prompt_tokens with teacher")
        if model.head not in ("auto", TEACHER_HEAD):
            raise ValueError(f"a teacher checkpoint teaches with its own head: drop head {model.head!r} with teacher")
        return replace(model, model=teacher, head=TEACHER_HEAD, num_virtual_tokens=0, use_template=False)
    tokens = model.num_virtual_tokens
    if tokens is None:
        tokens = DEFAULT_PROMPT_TOKENS if trains == "prompt" else 0
    if tokens == 0 and trains == "prompt":
        raise ValueError("tune prompt trains the soft prompt: prompt_tokens must be at least 1")
    if trains == "prompt":
        return replace(model, num_virtual_tokens=tokens)
    # a tuned backbone reads the bare text, as a transformers pipeline feeds it: no template tokens to pay for
    head = TUNED_HEAD if model.head == "auto" else model.head
    return replace(model, num_virtual_tokens=tokens, head=head, use_template=False)


# what each kind of condensation trains with by default: the paper's prompt-only mode without a
# teacher; LoRA and full condensation distilled from the prompt-tuned model (LoRA at 1e-3, the best of
# the feasibility runs in issue 23). Full condensation's rate, 2e-4, was chosen on validation over 1e-4
# (and distillation weights 0.5 against 1.0) by condensing each default run's plan again from its own
# fine-tuned teacher (benchmarks/sweeps/condensation_recipe/): SST-2's 3-layer plan at latency fraction
# 0.50 86.20 against 85.55, news.csv's 1-layer plan 89.35 against 88.19; MRPC's plan, which keeps every
# layer, 80.15 against 82.35, so mrpc.yaml keeps 1e-4 (condense_backbone). Pure distillation (1.0) was
# below 0.5 at either rate on SST-2 and news.csv.
# A condensing backbone trains for at least DEFAULT_CONDENSE_MIN_STEPS (about one epoch of SST-2's 20,000
# rows, where the recipe was chosen): a small split's one epoch is too few updates to recover from whole
# layers removed. Chosen on validation, each run's own shipped plan condensed again
# (benchmarks/sweeps/condensation_epochs/): news.csv (150 steps an epoch) 88.19 at one epoch, 88.85 at
# two, 89.35 at four (600 steps planned: the floor's own run); MRPC (115 an epoch) 79.41 at one and two,
# 78.19 at three, 79.66 at four, 80.15 with the floor (early stopping ends both near 300 steps). Search
# trials keep a quarter of the epoch (CompressConfig.trial_budget). The paper's prompt-only mode keeps its epoch.
DEFAULT_CONDENSE_MIN_STEPS = 600
CONDENSE_RECIPES = {
    "prompt": {"distill": 0.0},
    "lora": {"distill": 0.5, "backbone_lr": 1e-3, "min_steps": DEFAULT_CONDENSE_MIN_STEPS},
    "full": {"distill": 0.5, "backbone_lr": 2e-4, "min_steps": DEFAULT_CONDENSE_MIN_STEPS},
}
DEFAULT_TRAINS = "full"
# with a latency table (the default search), the condensed prompt's length, chosen on validation
# from 4 / 8 / 12 / 20 (benchmarks/sweeps/condensation_prompt_length_sst2.json)
DEFAULT_CONDENSED_PROMPT_TOKENS = 4
# search trials of a condensing backbone train this share of one epoch of condensation (the chosen
# search value is then condensed in full)
DEFAULT_TRIAL_SHARE = 0.25


def default_condense_config(trains: str = DEFAULT_TRAINS) -> TrainConfig:
    """Knowledge condensation: one epoch (a condensing backbone at least
    :data:`DEFAULT_CONDENSE_MIN_STEPS` steps), warm-started from the tuned prompt, with what ``trains``
    names open in the backbone and its recipe (:data:`CONDENSE_RECIPES`).

    One epoch was chosen on validation for the prompt (SST-2, default model): at kept ratio 0.50 one
    epoch reaches 87.20 against a quarter epoch's 85.90, at 0.25 85.35 against 85.25
    (benchmarks/sweeps/condensation_sweep_sst2_minilm.json). Full distilled condensation was chosen
    over LoRA and the prompt alone on validation at the 2x plan
    (benchmarks/sweeps/condensation_modes_sst2.json).
    """
    if trains not in CONDENSE_RECIPES:
        raise ValueError(f"condense must be one of {', '.join(CONDENSE_RECIPES)}, got {trains!r}")
    return TrainConfig(epochs=1.0, evals_per_epoch=2, patience=2, trains=trains, **CONDENSE_RECIPES[trains])


def task_train_config(
    task: str | TaskSpec, stage: str = "tune", trains: str | None = None, tuned_teacher: bool = False
) -> TrainConfig:
    """The settings of ``stage`` (``tune`` or ``condense``, training what ``trains`` names besides the
    prompt and head) for ``task``: the defaults with the task's recipe. The task's tuning recipe was
    chosen for the soft prompt; a tuned backbone keeps its step budget and batch size only. Condensing
    a tuned teacher (``tuned_teacher``: its backbone fine-tuned, or a given checkpoint) trains its
    already-trained head at the backbone's rate, not at the rate a fresh prompt-tuning head needs."""
    spec = get_task(task) if isinstance(task, str) else task
    if stage == "tune":
        trains = trains or DEFAULT_TUNE
        recipe = dict(spec.tune)
        if trains != "prompt":
            budget = {k: v for k, v in recipe.items() if k in ("steps", "batch_size")}
            recipe = budget | dict(spec.tune_backbone.get(trains, {}))
        return replace(TrainConfig(), trains=trains, **(TUNE_RECIPES[trains] | recipe))
    trains = trains or DEFAULT_TRAINS
    recipe = dict(spec.condense) | dict(spec.condense_backbone.get(trains, {}))
    condense = replace(default_condense_config(trains), **recipe)
    return replace(condense, head_lr=condense.backbone_lr) if tuned_teacher else condense


@dataclass
class TuneConfig:
    """``skeleton tune``: prompt-tune a frozen model on a task and save the prompt.

    Attributes:
        data, model, train: the stage settings; ``train=None`` takes the task's recipe
            (``task_train_config``).
        output: where to save; ``None`` = ``exported_models/<task>-<model>-prompt``.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda``...
        precision: what training runs in: ``auto`` (bf16 autocast where the device has native bf16
            arithmetic and one timed training step of the run's own model is at least 1.2x faster in
            it, else fp32), ``fp32`` or ``bf16``; the choice and its timings are in the report.
        overwrite: replace an existing output directory.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig | None = None
    output: str | None = None
    device: str = "auto"
    precision: str = "auto"
    overwrite: bool = False

    def __post_init__(self) -> None:
        check_device(self.device)
        check_precision(self.precision)

    def resolved(self) -> TuneConfig:
        """This config with the task's recipe wherever a setting is ``None``, and the model settings of
        what trains (:func:`resolve_model`)."""
        train = self.train or task_train_config(self.data.task_spec(), "tune")
        return replace(self, train=train, model=resolve_model(self.model, train.trains))


@dataclass
class CompressConfig:
    """Settings of ``skeleton compress``.

    Attributes:
        data, model: the task and backbone (as for ``skeleton tune``).
        tune: step 1, prior knowledge injection: what trains (``trains``: ``prompt``, the paper's soft prompt
            on the frozen backbone; ``lora``; ``full``) and how; ``None``: the default kind with the task's recipe.
        condense: the pruned model's training (knowledge condensation); ``None``: the task's.
        search: margin, grid step and trial budget of the search.
        scorer: which scorer ranks neurons (``attribution``, ``activation``, ``gradient``, ``random``;
            ``skill`` for skill-neuron predictivity, ``lca`` for the NeuroX elastic-net probe).
        attribution_samples: training instances the scorer averages over (20 in the paper).
        scorer_samples: training instances the skill baselines and the LCA probe are drawn from.
        skill_prompts: prompts the skill predictivity is averaged over (the run's own, then prompts
            tuned as step 1 with the next seeds).
        targets: ``("ffn",)`` prunes FFN neurons (the paper, searching the kept ratio); with
            ``heads`` attention heads and with ``layers`` whole layers go too (the default), ranked
            with the neurons by score per unit of measured latency (exchange rates calibrated on
            validation), the search then over the predicted latency fraction;
            ``("ffn", "ffn-out")`` also prunes the second FFN's output dims, zero-padded back to
            the hidden size.
        condensed_prompt_tokens: shorten the soft prompt to this many tokens for condensation,
            warm-started from its highest-scoring positions (``None``: with a latency table in the
            search, ``DEFAULT_CONDENSED_PROMPT_TOKENS``, which the table then prices in; without
            one, the prompt keeps its length).
        cost_shapes: (batch, input tokens) shapes the speed-up is predicted, measured and aimed at: the search's
            objective is the slowest of them (default: batch 1, 8, 32 x tokens 16, 64, 128, the grid bench reports).
        bias_compensation: fold removed neurons' mean contribution into the second FFN bias.
        round_to: keep each layer's FFN width a multiple of this (1 = no rounding).
        fast_search: judge search trials without condensing; condense only the chosen search value
            (``None``: with prompt condensation the task's default, on for tasks whose full search
            would not fit 15 minutes; off when the backbone condenses, whose trials are short).
        trial_steps: search trials condense for this many steps only, and the chosen search value is
            then condensed with the whole budget (``None``: ``DEFAULT_TRIAL_SHARE`` of one epoch of it,
            before ``condense.min_steps`` raises it, when the backbone condenses, ``lora`` or
            ``full``; with the prompt alone, trials condense in full and the chosen one is reused).
        prompt: a directory from ``skeleton tune`` to reuse instead of step 1.
        teacher: a sequence-classification checkpoint (a local directory or hub id of a family's
            ``*ForSequenceClassification``, labels in its ``id2label``) to compress instead of step 1:
            its logits teach, its own head reads the slim backbone, and it has no soft prompt.
        output: output directory; ``None`` = ``exported_models/<task>-<model>``.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda``...
        precision: what training runs in: ``auto`` (bf16 autocast where the device has native bf16
            arithmetic and one timed training step of the run's own model is at least 1.2x faster in
            it, else fp32), ``fp32`` or ``bf16``; the choice and its timings are in the report.
        min_gain: after step 1, the teacher must beat the majority class on validation by this many
            points, or compress stops (a model that has not learned the task cannot be localised; the
            tuned teacher is kept for ``--resume``).
        allow_weak_prior: go on anyway; the report then marks the result ``weak_prior``.
        resume: continue after the last finished stage of an interrupted run with the same output.
        overwrite: replace an existing output directory.
        export: also export to ONNX (``skeleton export``) at the end.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tune: TrainConfig | None = None
    condense: TrainConfig | None = None
    search: SearchConfig = field(default_factory=SearchConfig)
    scorer: str = "attribution"
    attribution_samples: int = 20
    scorer_samples: int = 2000
    skill_prompts: int = 3
    targets: tuple[str, ...] = ("ffn", "heads", "layers")
    bias_compensation: bool = True
    round_to: int = 8
    condensed_prompt_tokens: int | None = None
    cost_shapes: tuple[tuple[int, int], ...] = SPEEDUP_GRID
    fast_search: bool | None = None
    trial_steps: int | None = None
    prompt: str | None = None
    teacher: str | None = None
    min_gain: float = 2.0
    allow_weak_prior: bool = False
    output: str | None = None
    device: str = "auto"
    precision: str = "auto"
    resume: bool = False
    overwrite: bool = False
    export: bool = True

    def __post_init__(self) -> None:
        check_device(self.device)
        check_precision(self.precision)
        self.targets = tuple(self.targets)
        unknown = [t for t in self.targets if t not in TARGETS]
        if unknown or "ffn" not in self.targets:
            raise ValueError(
                f"targets must include ffn and be among {', '.join(TARGETS)}, got {','.join(self.targets)}"
            )
        if self.scorer not in SCORERS:
            raise ValueError(f"unknown scorer {self.scorer!r}; choose one of {', '.join(SCORERS)}")
        _at_least_one(self, "attribution_samples", "scorer_samples", "skill_prompts", "round_to", "trial_steps")
        if self.prompt and self.teacher:
            raise ValueError("give a tuned prompt or a teacher checkpoint, not both")
        tokens, condensed = self.model.num_virtual_tokens, self.condensed_prompt_tokens
        if condensed is not None and tokens is not None and not 1 <= condensed <= tokens:
            raise ValueError(
                f"condensed_prompt_tokens must lie in 1..{tokens} (the prompt's length), got {condensed}"
                if tokens
                else "condensed_prompt_tokens needs a soft prompt; this model has none"
            )
        self.cost_shapes = tuple(tuple(int(v) for v in shape) for shape in self.cost_shapes)
        if not self.cost_shapes or any(len(s) != 2 or min(s) < 1 for s in self.cost_shapes):
            raise ValueError("cost_shapes must be (batch, tokens) pairs of positive numbers")
        if "ffn-out" in self.targets and self.uses_costs:
            raise ValueError("targets ffn-out cannot be combined with heads, layers or a target speed-up")

    def trained_in(self, precision: str) -> CompressConfig:
        """This (resolved) config with steps 1 and 4 training in ``precision`` (``fp32`` or ``bf16``)."""
        return replace(
            self, tune=replace(self.tune, precision=precision), condense=replace(self.condense, precision=precision)
        )

    @property
    def uses_costs(self) -> bool:
        """Whether units are ranked by score per measured latency (heads, or a speed-up target)."""
        return bool({"heads", "layers"} & set(self.targets)) or self.search.target_speedup is not None

    def resolved(self) -> CompressConfig:
        """This config with the task's recipe wherever a setting is ``None``; with a latency table, the
        condensed prompt's default length. A backbone that condenses (``lora``, ``full``) judges
        search trials by short condensations (``trial_share`` of the budget), never by the pruned
        model alone: distillation recovers far more than the uncondensed model shows."""
        spec = self.data.task_spec()  # read once: a task file is read from disk
        tune = self.tune or task_train_config(spec, "tune")
        tuned = tuned_teacher(tune.trains, self.teacher)
        condense = self.condense or task_train_config(spec, "condense", tuned_teacher=tuned)
        model = resolve_model(self.model, tune.trains, self.teacher)
        if self.scorer == "skill" and not model.num_virtual_tokens:
            raise ValueError("the skill scorer reads soft-prompt positions: give prompt_tokens, or tune prompt")
        tokens = self.condensed_prompt_tokens
        if tokens is None and self.uses_costs and model.num_virtual_tokens:
            tokens = min(DEFAULT_CONDENSED_PROMPT_TOKENS, model.num_virtual_tokens)
        fast_search = self.fast_search
        if fast_search is None:
            fast_search = spec.fast_search and condense.trains == "prompt"
        return replace(
            self,
            model=model,
            tune=tune,
            condense=condense,
            fast_search=fast_search,
            condensed_prompt_tokens=tokens,
        )

    def trial_budget(self, rows: int) -> int | None:
        """The steps a search trial condenses for on ``rows`` training rows (``None``: the whole
        condensation's). The default share is of one epoch (or of ``condense.steps``), not of more epochs
        nor of the floor (``condense.min_steps``) that raises a small split's full condensation: a longer
        full condensation leaves the trials' cost as it was."""
        condense = self.condense if self.condense is not None else self.resolved().condense  # the task's recipe
        total = condense.planned_steps(rows)
        if self.trial_steps is not None:
            budget = self.trial_steps
        elif condense.trains == "prompt":
            return None
        else:
            one_epoch = replace(condense, min_steps=None, epochs=1.0)  # a longer condensation's trials cost the same
            budget = max(1, round(DEFAULT_TRIAL_SHARE * one_epoch.planned_steps(rows)))
        return None if budget >= total else budget

    def to_dict(self) -> dict:
        data = asdict(self)
        data["targets"] = list(self.targets)
        data["cost_shapes"] = [list(shape) for shape in self.cost_shapes]
        return data


@dataclass
class ServeConfig:
    """How ``skeleton serve`` batches, limits and runs requests.

    Attributes:
        host: the address to listen on (loopback by default: put a proxy in front to expose it).
        port: the TCP port.
        runtime: how each model runs: ``None`` or 'auto' = the graph the export measured least behind the
            fastest at any batch a server runs, one text to a full batch (end to end, among those that passed
            its bar; for older exports the manifest's default), 'onnx' (the fastest onnxruntime graph), a graph runtime
            ('onnx-int8', 'openvino-int8', ...) or PyTorch 'torch-fp32' / 'torch-bf16' (autocast, fast on
            CPUs with AMX or AVX512-BF16) / 'torch-fp16' (CUDA).
        device: 'auto' (CUDA when present, else CPU), 'cpu' or 'cuda'.
        max_batch_tokens: at most this many tokens in one model call, counted after padding.
        max_batch_size: at most this many inputs in one model call.
        max_wait_ms: how long a batch, once a stream is free for it, waits for more requests before it runs.
            0 (the default, as Triton's dynamic batcher): it takes what waits then, so a lone request is never
            held back, and under load the inputs that arrived while the last batch ran make the next one.
        max_queue: inputs waiting per model beyond which requests get 429 with Retry-After.
        max_client_batch: inputs one request may carry (more: 413).
        max_input_chars: characters one input may have (more: 413).
        threads: onnxruntime intra-op threads per model (default: one per core).
        streams: batches of one model an OpenVINO graph runs at once, each on its share of the cores
            (default: as many as OpenVINO's throughput hint chooses, 2 on a 2-core CPU); 1 runs one batch
            at a time on every core (the latency hint). Other runtimes run one batch at a time.
        static_batch_one: on OpenVINO, also compile the graph for one input at each length bucket up to 128
            tokens, so that a batch of one runs on a graph of fixed shape, which skips the shape work a dynamic
            graph redoes at every call (the default SST-2 model's openvino-int8 graph at 1x16: 0.83 against
            0.65 ms here), for a compile of about 0.2 s per bucket before ready and a copy of the compiled
            weights per bucket (about 70 MB each for MiniLM-L6, most of it the embedding table).
        spinning: let onnxruntime's idle threads spin between batches. Default: on with one model
            (384 against 333 sentences/s under load on SST-2 training sentences), off with several,
            whose idle sessions' spinning threads would take the cores from the busy one (339 against
            263 with two models).
        api_key: when set, every route but /health needs ``Authorization: Bearer <key>`` (401 otherwise);
            the CLI also reads it from ``SKELETON_API_KEY``.
        no_auth: serve beyond loopback without a key (behind a proxy that authenticates).
        drain_seconds: on SIGTERM, at most this long to answer what was accepted: the listener closes at
            once, /ready turns 503, requests on open connections are still answered (with
            ``Connection: close``), a connection yet to send its first request is waited for, and idle
            keep-alive connections are closed once quiet for a second.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    runtime: str | None = None
    device: str = "auto"
    max_batch_tokens: int = 8192
    max_batch_size: int = 32
    max_wait_ms: float = 0.0
    max_queue: int = 512
    max_client_batch: int = 64
    max_input_chars: int = 20_000
    threads: int | None = None
    streams: int | None = None
    static_batch_one: bool = False
    spinning: bool | None = None
    api_key: str | None = None
    no_auth: bool = False
    drain_seconds: float = 10.0

    def __post_init__(self) -> None:
        check_device(self.device)
        _at_least_one(
            self,
            "max_batch_tokens",
            "max_batch_size",
            "max_queue",
            "max_client_batch",
            "max_input_chars",
            "threads",
            "streams",
        )
        if not self.api_key and not self.no_auth and not is_loopback(self.host):
            raise ValueError(
                f"serving on {self.host} lets anyone who reaches it call every route: give --api-key "
                "(or SKELETON_API_KEY), or --no-auth when a proxy in front authenticates"
            )
        if self.drain_seconds < 0:
            raise ValueError(f"drain_seconds must not be negative, got {self.drain_seconds}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must not be negative, got {self.max_wait_ms}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must lie in [0, 65535], got {self.port}")
        if self.runtime is not None:
            self.runtime = runtime_named(self.runtime)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PredictConfig:
    """How ``skeleton predict`` and ``skeleton evaluate`` run an exported model.

    Attributes:
        runtime: the runtime that runs the model: ``None`` or 'auto' = the graph the export measured fastest
            one text at a time (end to end, among those that passed its bar), 'onnx' (the fastest onnxruntime
            graph), a graph runtime ('onnx-int8', 'openvino-bf16', ...) or PyTorch ('torch-fp32', 'torch-bf16',
            'torch-fp16'); a manifest variant name is read as the runtime that runs it ('int8' is 'onnx-int8').
        batch_size: texts per model call.
        device: 'auto' (CUDA when present, else CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'.
        threads: intra-op threads (default: one per core).
    """

    runtime: str | None = None
    batch_size: int = 32
    device: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        check_device(self.device)
        _at_least_one(self, "batch_size", "threads")
        if self.runtime is not None:
            self.runtime = runtime_named(self.runtime)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EvaluateConfig:
    """``skeleton evaluate``: an exported model's accuracy on a labelled file.

    Attributes:
        data_file: the labelled file: a GLUE-style TSV of a built-in task, or CSV, TSV, JSON, JSON Lines or
            Parquet with named columns.
        data_format: the file's format (default: from its extension).
        text_columns: the column(s) holding the text (default: the columns the model was trained on);
            several are joined as in training.
        pair_column: for a pair model, the column holding each pair's second text.
        label_column: the column holding the label (default: the model's); labels are the model's label
            names, or integers indexing them.
        run: the runtime, batch size and device (``PredictConfig``).
        level: the confidence level of the intervals (percentile bootstrap over the rows).
    """

    data_file: str = ""
    data_format: str | None = None
    text_columns: list[str] = field(default_factory=list)
    pair_column: str | None = None
    label_column: str | None = None
    run: PredictConfig = field(default_factory=PredictConfig)
    level: float = 0.95

    def __post_init__(self) -> None:
        self.text_columns = tuple(self.text_columns)
        if not self.data_file:
            raise ValueError("data_file is required: the labelled file to evaluate on")
        if self.data_format is not None and self.data_format not in DATA_FORMATS:
            raise ValueError(f"data_format must be one of {', '.join(DATA_FORMATS)}, got {self.data_format!r}")
        if self.pair_column is not None and len(self.text_columns) != 1:
            raise ValueError("pair_column needs exactly one text_columns beside it (the pair's first text)")
        if not 0 < self.level < 1:
            raise ValueError(f"level must lie in (0, 1), got {self.level}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TritonConfig:
    """How the Triton repository serves the model.

    Attributes:
        name: the model name clients call (default: the model directory's name).
        variant: the ONNX variant to serve (default: the manifest's default when it is an onnxruntime graph, else
            the fastest onnxruntime graph that passed the bar).
        max_batch_size: the largest batch Triton's dynamic batcher builds.
        preferred_batch_sizes: batch sizes the batcher aims for.
        max_queue_delay_us: how long a request may wait for a batch to fill, in microseconds.
        instances: model instances (each runs batches in parallel).
        kind: where instances run: KIND_AUTO (GPU when present), KIND_CPU or KIND_GPU.
        pad_to_multiple_of: the tokenizer pads each request to a multiple of this many tokens, so
            requests of similar length have equal shapes and can share a batch.
    """

    name: str | None = None
    variant: str | None = None
    max_batch_size: int = 64
    preferred_batch_sizes: tuple[int, ...] = (8, 16, 32)
    max_queue_delay_us: int = 2000
    instances: int = 1
    kind: str = "KIND_AUTO"
    pad_to_multiple_of: int = 16

    def __post_init__(self) -> None:
        if self.kind not in ("KIND_AUTO", "KIND_CPU", "KIND_GPU"):
            raise ValueError(f"kind must be KIND_AUTO, KIND_CPU or KIND_GPU, got {self.kind}")
        _at_least_one(self, "max_batch_size", "instances", "pad_to_multiple_of")
        if any(size > self.max_batch_size or size < 1 for size in self.preferred_batch_sizes):
            raise ValueError("preferred_batch_sizes must lie in [1, max_batch_size]")

    def to_dict(self) -> dict:
        return asdict(self)


def _known_scorers(scorers) -> tuple[str, ...]:
    """``scorers`` as a tuple, at least one, each a registered scorer."""
    scorers = tuple(scorers)
    if not scorers or any(name not in SCORERS for name in scorers):
        raise ValueError(f"scorers must be among {', '.join(SCORERS)}, got {','.join(scorers) or 'none'}")
    return scorers


@dataclass
class CompareConfig:
    """Settings of ``skeleton compare``: several scorers on one prompt-tuned model, pruned to the same
    kept ratio, judged before and after knowledge condensation.

    Attributes:
        compress: the task, model, training and pruning settings (as for ``skeleton compress``; its
            ``prompt`` reuses a tuned prompt, its own ``scorer`` is not used).
        scorers: the scorers to compare.
        kept_ratio: the share of FFN neurons every scorer keeps.
        after_condensation: also re-tune the prompt on each pruned model (the "after condensation" columns).
        skill_cache: where the skill scorer's extra prompts are kept, so that another compare or
            ``skeleton analyze`` reuses them (default: the output's ``skill_prompts/``).
        output: the report's directory (default: ``exported_models/<task>-<model>-compare``).
        overwrite: replace an existing output directory.
    """

    compress: CompressConfig = field(default_factory=CompressConfig)
    scorers: tuple[str, ...] = SCORERS
    kept_ratio: float = 0.5
    after_condensation: bool = True
    skill_cache: str | None = None
    output: str | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        self.scorers = _known_scorers(self.scorers)
        if len(set(self.scorers)) != len(self.scorers):
            raise ValueError(f"scorers must not repeat, got {','.join(self.scorers)}")
        if not 0 < self.kept_ratio < 1:
            raise ValueError(f"kept_ratio must lie strictly between 0 and 1, got {self.kept_ratio}")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["compress"] = self.compress.to_dict()
        data["scorers"] = list(self.scorers)
        return data


@dataclass
class AnalyzeConfig:
    """Settings of ``skeleton analyze`` on a compressed directory.

    Attributes:
        scorers: the scorers whose rankings are analysed (the run's own scores are reused for its scorer).
        suppression_percents: the shares of neurons zeroed for the suppression curves, in percent.
        top_percent: the share of neurons counted as a scorer's "top" in the per-layer distribution.
        data: extra labelled TSV files (the task's columns) to evaluate both models on, e.g. shifted
            or adversarial sets.
        samples: training instances the skill baselines and the LCA probe are drawn from.
        skill_prompts: prompts the skill predictivity is averaged over (the run's own, then prompts
            tuned with the run's settings and the next seeds).
        skill_cache: where the skill scorer's extra prompts are kept (default: ``DIR/skill_prompts``).
        scores_from: a ``skeleton compare`` output on the same prompt-tuned model whose saved scores
            are reused instead of scoring again (checked by the prompt's fingerprint).
        seed: seeds the random neurons of the suppression baseline.
        device: 'auto' (CUDA when present), 'cpu', 'cuda'...
    """

    scorers: tuple[str, ...] = SCORERS
    suppression_percents: tuple[float, ...] = (1, 2, 3, 5, 7, 10, 15)
    top_percent: float = 5.0
    data: tuple[str, ...] = ()
    samples: int = 2000
    skill_prompts: int = 3
    skill_cache: str | None = None
    scores_from: str | None = None
    seed: int = 42
    device: str = "auto"

    def __post_init__(self) -> None:
        check_device(self.device)
        self.scorers = _known_scorers(self.scorers)
        self.data = tuple(str(path) for path in self.data)
        self.suppression_percents = tuple(float(p) for p in self.suppression_percents)
        if not self.suppression_percents or not all(0 < p < 100 for p in self.suppression_percents):
            raise ValueError("suppression_percents must lie strictly between 0 and 100")
        if not 0 < self.top_percent < 100:
            raise ValueError(f"top_percent must lie strictly between 0 and 100, got {self.top_percent}")
        _at_least_one(self, "samples", "skill_prompts")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ExportConfig:
    """Settings of ``skeleton export``.

    Attributes:
        variants: which graphs to write (``fp32`` always comes first; the others derive from it):
            onnxruntime's ``fp32``, ``optimized`` and ``int8``, and OpenVINO's ``openvino-fp32``,
            ``openvino-bf16`` (CPUs with native bf16 only) and ``openvino-int8`` (NNCF).
        nncf_methods: which NNCF quantisation settings compete for ``openvino-int8``.
        opset: ONNX opset.
        parity_samples: validation sentences the onnxruntime/PyTorch logit parity check runs on.
        fp32_tolerance: largest accepted |logit difference| of fp32 (and optimized) graphs.
        int8_kinds: which quantisation methods compete for ``int8`` (see :mod:`skeleton.deploy.quantization`).
        int8_max_drop: an int8 graph ships only if its validation accuracy is at most this many
            points below the fp32 graph's.
        int8_min_agreement: ... and its argmax equals the fp32 graph's on at least this share of
            the validation split.
        int8_bar: with ``False`` the fastest int8 candidate is written even when it fails the bar
            (benchmarks of what a user would get from a quantiser); the manifest says so.
        calibration_samples: training sentences the static quantiser calibrates on.
        latency_shapes: (batch, tokens) shapes the variants are timed at, to pick the fastest.
        latency_repeats: alternated rounds per shape.
        serving_samples: validation sentences each graph that passed the bar classifies end to end
            (tokenizer included, batches padded to their buckets as predict and serve run them, taken in
            their order as a server takes arrivals, not sorted by length) at each of ``serving_batches``,
            to choose the graph ``predict`` runs (fastest at batch 1) and the one ``serve`` runs (fastest
            at its largest batch).
        serving_batches: the batch sizes of that measurement: one text at a time, and a server's batch.
        threads: onnxruntime intra-op threads while timing (default: one per core).
    """

    variants: tuple[str, ...] = ("fp32", "optimized", "int8", *OPENVINO_RUNTIMES)
    opset: int = 17
    parity_samples: int = 64
    fp32_tolerance: float = 1e-4
    int8_kinds: tuple[str, ...] = INT8_KINDS
    nncf_methods: tuple[str, ...] = NNCF_METHODS
    int8_max_drop: float = 0.5
    int8_min_agreement: float = 0.97
    int8_bar: bool = True
    calibration_samples: int = 128
    latency_shapes: tuple[tuple[int, int], ...] = ((1, 64), (32, 128))
    latency_repeats: int = 10
    serving_samples: int = 256
    serving_batches: tuple[int, ...] = (1, 32)
    threads: int | None = None

    def __post_init__(self) -> None:
        self.variants = tuple(self.variants)
        self.serving_batches = tuple(self.serving_batches)
        _at_least_one(self, "serving_samples")
        if not self.serving_batches or min(self.serving_batches) < 1:
            raise ValueError(f"serving_batches must be positive numbers, got {self.serving_batches}")
        self.int8_kinds = tuple(self.int8_kinds)
        self.nncf_methods = tuple(self.nncf_methods)
        bad_methods = [m for m in self.nncf_methods if m not in NNCF_METHODS]
        if bad_methods:
            raise ValueError(f"nncf_methods must be among {', '.join(NNCF_METHODS)}, got {','.join(bad_methods)}")
        self.latency_shapes = tuple(tuple(shape) for shape in self.latency_shapes)
        unknown = [v for v in self.variants if v not in VARIANT_FILES]
        if unknown or "fp32" not in self.variants:
            raise ValueError(
                f"variants must include fp32 and be among {', '.join(VARIANT_FILES)}, got {','.join(self.variants)}"
            )
        bad_kinds = [k for k in self.int8_kinds if k not in INT8_KINDS]
        if bad_kinds or not self.int8_kinds:
            raise ValueError(f"int8_kinds must be among {', '.join(INT8_KINDS)}, got {','.join(self.int8_kinds)}")
        if self.parity_samples < 1:
            raise ValueError(f"parity_samples must be at least 1, got {self.parity_samples}")
        if not 0.0 <= self.int8_min_agreement <= 1.0:
            raise ValueError(f"int8_min_agreement must lie in [0, 1], got {self.int8_min_agreement}")
        if self.int8_max_drop < 0:
            raise ValueError(f"int8_max_drop must be non-negative, got {self.int8_max_drop}")
        if not self.latency_shapes or any(b < 1 or n < 1 for b, n in self.latency_shapes):
            raise ValueError("latency_shapes must be (batch, tokens) pairs of positive numbers")
        if self.latency_repeats < 1:
            raise ValueError(f"latency_repeats must be at least 1, got {self.latency_repeats}")


@dataclass
class BenchConfig:
    """Settings of ``skeleton bench``.

    Attributes:
        batch_sizes: sequences per call.
        lengths: input tokens per sequence (the soft prompt's tokens come on top, inside the model).
        runtimes: which runtimes to time; ``None`` = every one this machine offers.
        threads: intra-op threads of PyTorch and onnxruntime (default: one per core).
        repeats: alternated rounds per grid point.
        warmup: untimed calls of each contender per grid point.
        max_seconds: stop a grid point's rounds after this long (at least ``min_repeats`` rounds run).
        min_repeats: rounds every grid point gets.
        head_to_head: time each runtime's two models alternating on their own, one runtime after the other,
            instead of every model/runtime pair in one rotation, where another runtime's threads, still
            winding down from its call, slow the next call by about as much as a small model's whole batch-1
            call (benchmarks/results/LOG.md); a headline across two runtimes compares two such alternations.
        static_batch_one: OpenVINO runs batches of one on graphs compiled for each grid length up to 128
            tokens (both models), as ``serve --static-batch-one`` does; off, as the server and predict by default.
        calls_per_turn: calls of each contender in a row per round, only the last timed
            (:func:`skeleton.core.timing.time_alternating`): 1 times each call just after the other
            contenders ran (their weights evicted its own from the caches); more times it warm, as a
            model serving alone runs.
        data: a task file (TSV) whose real sentences are also timed end to end, tokenizer included.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        output: where the report goes; ``None`` = ``DIR/bench``.
    """

    batch_sizes: tuple[int, ...] = (1, 8, 32, 64)
    lengths: tuple[int, ...] = (16, 32, 64, 128, 256)
    runtimes: tuple[str, ...] | None = None
    threads: int | None = None
    repeats: int = 10
    warmup: int = 2
    max_seconds: float = 20.0
    min_repeats: int = 5
    calls_per_turn: int = 1
    head_to_head: bool = False
    static_batch_one: bool = False
    data: str | None = None
    device: str = "auto"
    output: str | None = None

    def __post_init__(self) -> None:
        check_device(self.device)
        self.batch_sizes = tuple(self.batch_sizes)
        self.lengths = tuple(self.lengths)
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ValueError(f"batch_sizes must be positive numbers, got {self.batch_sizes}")
        if not self.lengths or min(self.lengths) < 1:
            raise ValueError(f"lengths must be positive numbers, got {self.lengths}")
        if self.runtimes is not None:
            self.runtimes = tuple(self.runtimes)
            unknown = [r for r in self.runtimes if r not in RUNTIME_NAMES]
            if unknown or not self.runtimes:
                raise ValueError(f"runtimes must be among {', '.join(RUNTIME_NAMES)}, got {','.join(self.runtimes)}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        if self.repeats < 1 or self.min_repeats < 1 or self.warmup < 0:
            raise ValueError("repeats and min_repeats must be at least 1, warmup at least 0")
        if self.calls_per_turn < 1:
            raise ValueError(f"calls_per_turn must be at least 1, got {self.calls_per_turn}")

    def to_dict(self) -> dict:
        return asdict(self)
