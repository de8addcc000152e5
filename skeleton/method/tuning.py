"""Prompt tuning (the paper's prior knowledge injection, and its knowledge condensation)."""

from __future__ import annotations

import copy
import functools
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from skeleton.core.batching import EncodedSplit, iterate_batches, num_batches
from skeleton.core.config import CompressConfig
from skeleton.core.config import TrainConfig as TrainConfig
from skeleton.core.config import TuneConfig as TuneConfig
from skeleton.core.device import resolve_device
from skeleton.core.evaluation import compute_metrics, predict_logits
from skeleton.core.evaluation import evaluate as evaluate
from skeleton.core.file_names import REPORT_FILE
from skeleton.core.modeling import PromptedClassifier
from skeleton.core.outputs import atomic_directory, library_versions, save_classifier
from skeleton.core.precision import PrecisionChoice, autocast, choose_precision, synchronize
from skeleton.core.progress import SILENT, Reporter
from skeleton.core.reports import ModelMeta, TuneReport
from skeleton.core.workspace import Workspace
from skeleton.method.adaptation import close_backbone, open_backbone


@dataclass
class TrainResult:
    """What one training run did: the best validation accuracy, its history, and its cost.

    ``validation_predictions`` (argmax per validation row, of the restored best state) feed paired
    confidence intervals; they are left out of ``to_dict``.
    """

    best_validation_accuracy: float
    steps: int
    seconds: float
    history: list[dict] = field(default_factory=list)
    validation_predictions: list[int] | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("validation_predictions")
        return data


def _validate(classifier, validation: EncodedSplit, device, config: TrainConfig, pad_token_id: int):
    """(accuracy, argmax per row) on the validation split."""
    predictions = predict_logits(classifier, validation, device, config.eval_batch_size, pad_token_id).argmax(-1)
    accuracy = compute_metrics(predictions, torch.tensor(validation.labels))["accuracy"]
    return accuracy, predictions.tolist()


def _trainable_state(classifier: PromptedClassifier) -> dict[str, torch.Tensor]:
    """A copy of every parameter that trains (prompt, head, and what the backbone opened)."""
    return {name: p.detach().clone() for name, p in classifier.named_parameters() if p.requires_grad}


def _restore_state(classifier: PromptedClassifier, state: dict[str, torch.Tensor]) -> None:
    parameters = dict(classifier.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            parameters[name].copy_(value)


def _train_mode(classifier: PromptedClassifier, backbone_dropout: bool) -> None:
    classifier.train()
    if not backbone_dropout:
        classifier.backbone.eval()


# devices whose AdamW PyTorch fuses into one kernel per step (the default loops over every tensor in small ops)
FUSED_ADAMW_DEVICES = ("cpu", "cuda")


def _optimizer(classifier: PromptedClassifier, config: TrainConfig, backbone: list[nn.Parameter]) -> torch.optim.AdamW:
    """AdamW over the prompt (no weight decay), the head and what trains in the backbone; fused where PyTorch
    has the kernel for the device. The same update as the default implementation, which on a CPU runs about ten
    small operations per tensor: on a 2-core AMX Xeon a three-layer MiniLM step of batch 32 x 16 tokens took
    48 ms fused against 55 ms in bf16 autocast (1.14x), 87 against 98 ms in fp32 (1.12x), and more where the
    cores are shared (``benchmarks/sweeps/training_precision/optimizer.py``, ``optimizer_amx.json``)."""
    prompt_params, head_params = classifier.trainable_parameters()
    groups = [{"params": prompt_params, "lr": config.lr, "weight_decay": 0.0}]
    if head_params:
        groups.append({"params": head_params, "lr": config.head_lr, "weight_decay": config.weight_decay})
    if backbone:
        groups.append({"params": backbone, "lr": config.backbone_lr, "weight_decay": config.weight_decay})
    devices = {p.device.type for group in groups for p in group["params"]}
    fused = bool(devices) and devices <= set(FUSED_ADAMW_DEVICES)
    return torch.optim.AdamW(groups, fused=fused or None)


def distillation_loss(logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) of the temperature-softened distributions, batch mean, times the
    temperature squared (Hinton et al. 2015), so its gradients keep their scale across temperatures."""
    student = nn.functional.log_softmax(logits.float() / temperature, dim=-1)
    teacher = nn.functional.log_softmax(teacher_logits.float() / temperature, dim=-1)
    return nn.functional.kl_div(student, teacher, reduction="batchmean", log_target=True) * temperature**2


def _loss(logits: torch.Tensor, batch, config: TrainConfig) -> torch.Tensor:
    """Cross-entropy with the labels, mixed with distillation to the teacher by ``config.distill``."""
    loss = nn.functional.cross_entropy(logits.float(), batch.labels)
    if config.distill == 0:
        return loss
    kd = distillation_loss(logits, batch.teacher_logits, config.temperature)
    return (1.0 - config.distill) * loss + config.distill * kd


def _linear_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup: int):
    """Linear warm-up over ``warmup`` steps (reaching the full rate at the last one), then linear decay to 0.

    transformers' ``get_linear_schedule_with_warmup`` decays the same way but gives the first step a
    learning rate of 0 (its warm-up is ours one step later); every measured result in the README was
    trained with this one, so it stays.
    """

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


@dataclass
class _Progress:
    """Running training figures since the last validation, and the best validated state so far."""

    best_accuracy: float
    best_state: dict
    best_predictions: list[int]
    patience: int
    evals_without_gain: int = 0
    loss: float = 0.0
    correct: int = 0
    seen: int = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> dict:
        self.loss += loss.item() * len(labels)
        self.correct += (logits.argmax(-1) == labels).sum().item()
        self.seen += len(labels)
        return {"loss": self.loss / self.seen, "acc": 100.0 * self.correct / self.seen, "best": self.best_accuracy}

    def validated(self, step: int, accuracy: float, predictions: list[int], classifier) -> tuple[dict, bool]:
        """The history entry of a validation pass, and whether early stopping ends training."""
        entry = {
            "step": step,
            "train_loss": self.loss / self.seen,
            "train_accuracy": 100.0 * self.correct / self.seen,
            "validation_accuracy": accuracy,
        }
        self.loss, self.correct, self.seen = 0.0, 0, 0
        if accuracy > self.best_accuracy:
            self.best_accuracy, self.best_state, self.evals_without_gain = accuracy, _trainable_state(classifier), 0
            self.best_predictions = predictions
            return entry, False
        self.evals_without_gain += 1
        return entry, self.evals_without_gain >= self.patience


def _start(classifier, validation: EncodedSplit, device, config: TrainConfig, pad_token_id: int, validate: bool):
    """The progress before the first step: the untrained state, validated unless ``validate`` is false."""
    accuracy, predictions = (
        _validate(classifier, validation, device, config, pad_token_id) if validate else (-math.inf, [])
    )
    return _Progress(accuracy, _trainable_state(classifier), predictions, config.patience)


def _step(classifier, batch, config: TrainConfig, optimizer, parameters) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on one batch (gradients clipped to norm 1), the forward pass in
    ``config.precision``; returns (loss, logits)."""
    with autocast(batch.input_ids.device, config.precision):
        logits = classifier(**batch.inputs())
        loss = _loss(logits, batch, config)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    optimizer.step()
    return loss, logits


def _validates_after(step: int, steps_per_epoch: int, evals_per_epoch: int) -> bool:
    """Whether ``step`` (counted from 1) is the first step at or past the next of ``evals_per_epoch``
    equal shares of an epoch, so the last pass of an epoch falls on its last step (not one before it
    and again after) and the passes do not drift from epoch to epoch."""
    return (step * evals_per_epoch) // steps_per_epoch > ((step - 1) * evals_per_epoch) // steps_per_epoch


def _training_rows(train: EncodedSplit, config: TrainConfig) -> EncodedSplit:
    """The rows training sees: all, or a seeded subset of ``config.max_samples``."""
    if config.distill > 0 and train.teacher_logits is None:
        raise ValueError("distillation needs the teacher's logits on the training split (EncodedSplit.with_teacher)")
    if config.max_samples is not None and len(train) > config.max_samples:
        generator = torch.Generator().manual_seed(config.seed)
        train = train.select(torch.randperm(len(train), generator=generator)[: config.max_samples].tolist())
    return train


def train_prompt(
    classifier: PromptedClassifier,
    train: EncodedSplit,
    validation: EncodedSplit,
    config: TrainConfig,
    device: torch.device,
    pad_token_id: int = 0,
    reporter: Reporter = SILENT,
    description: str = "prompt tuning",
    validate_start: bool = True,
) -> TrainResult:
    """Train the soft prompt and head (and what ``config.trains`` opens in the backbone) with AdamW,
    warm-up and linear decay, early stopping on validation accuracy; the best state is restored at
    the end and LoRA adapters are merged, so the classifier is a plain one again. With
    ``config.distill`` the loss mixes in distillation to ``train``'s teacher logits. Without
    ``validate_start`` the untrained state is not validated (its accuracy is ``None`` in the history)
    and cannot be the best one: what only ranks a training's end needs one validation pass less.
    """
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    classifier.to(device)
    train = _training_rows(train, config)
    backbone = open_backbone(classifier, config.trains, config.lora_rank)
    optimizer = _optimizer(classifier, config, backbone)
    steps_per_epoch = num_batches(train, config.batch_size)
    total_steps = config.planned_steps(len(train))
    scheduler = _linear_schedule(optimizer, total_steps, int(config.warmup_ratio * total_steps))
    history: list[dict] = []
    if config.head_init == "probe" and classifier.head is not None:
        history.append(fit_probe_head(classifier, train, validation, device, config, pad_token_id, reporter))
    progress = _start(classifier, validation, device, config, pad_token_id, validate_start)
    history.append({"step": 0, "validation_accuracy": progress.best_accuracy if validate_start else None})
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    history[-1]["trainable_parameters"] = sum(p.numel() for p in parameters)
    step, epoch, stop = 0, 0, False
    _train_mode(classifier, config.backbone_dropout)
    with reporter.bar(description, total_steps) as bar:
        while step < total_steps and not stop:
            batches = iterate_batches(train, config.batch_size, pad_token_id, shuffle=True, seed=config.seed + epoch)
            for batch in batches:
                batch = batch.to(device)
                loss, logits = _step(classifier, batch, config, optimizer, parameters)
                scheduler.step()
                step += 1
                bar.advance(1, **progress.add(loss, logits, batch.labels))
                if _validates_after(step, steps_per_epoch, config.evals_per_epoch) or step == total_steps:
                    accuracy, predictions = _validate(classifier, validation, device, config, pad_token_id)
                    entry, stop = progress.validated(step, accuracy, predictions, classifier)
                    history.append(entry)
                    _train_mode(classifier, config.backbone_dropout)
                if stop or step >= total_steps:
                    break
            epoch += 1
    _restore_state(classifier, progress.best_state)
    close_backbone(classifier)
    classifier.eval()
    seconds = time.perf_counter() - started
    return TrainResult(progress.best_accuracy, step, seconds, copy.deepcopy(history), progress.best_predictions)


PROBE_ROWS = 4096  # training rows the probe is fitted on: enough for a linear map of a few hundred features
PROBE_C = (0.01, 0.1, 1.0, 10.0)  # inverse L2 strengths tried, as scikit-learn's C


@torch.no_grad()
def pooled_features(
    classifier: PromptedClassifier, split: EncodedSplit, device: torch.device, batch_size: int, pad_token_id: int
) -> torch.Tensor:
    """(rows, in_features) what the head's linear layer reads (the prompted model's pooled text
    positions; a bi-encoder's pair features), in row order."""
    classifier.eval()
    features = torch.zeros(len(split), classifier.head.classifier.in_features)
    for batch in iterate_batches(split, batch_size, pad_token_id, shuffle=False):
        batch = batch.to(device)
        hidden, mask = classifier.hidden_states(**batch.inputs())
        num_prompt = hidden.shape[1] - batch.input_ids.shape[1]
        features[batch.indices] = classifier.head.features(hidden[:, num_prompt:], mask[:, num_prompt:]).float().cpu()
    return features


def fit_logistic(features: torch.Tensor, labels: torch.Tensor, num_labels: int, c: float) -> nn.Linear:
    """Multinomial logistic regression with scikit-learn's objective (C x summed cross-entropy + half
    the squared weight norm, bias unpenalised), solved with L-BFGS."""
    torch.manual_seed(0)
    linear = nn.Linear(features.shape[1], num_labels).double()
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    x, y = features.double(), labels
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(linear(x), y, reduction="sum") * c + 0.5 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return linear.float()


def fit_probe_head(
    classifier: PromptedClassifier,
    train: EncodedSplit,
    validation: EncodedSplit,
    device: torch.device,
    config: TrainConfig,
    pad_token_id: int,
    reporter: Reporter = SILENT,
) -> dict:
    """Start the cls head from the best logistic-regression probe (by validation accuracy) on the
    pooled features of at most ``PROBE_ROWS`` training rows; returns what was fitted, for the history."""
    reporter.message(f"fitting the head as a linear probe on {min(len(train), PROBE_ROWS)} training rows")
    if len(train) > PROBE_ROWS:
        generator = torch.Generator().manual_seed(config.seed)
        train = train.select(torch.randperm(len(train), generator=generator)[:PROBE_ROWS].tolist())
    fit_x = pooled_features(classifier, train, device, config.eval_batch_size, pad_token_id)
    val_x = pooled_features(classifier, validation, device, config.eval_batch_size, pad_token_id)
    fit_y, val_y = torch.tensor(train.labels), torch.tensor(validation.labels)
    best = None
    for c in PROBE_C:
        linear = fit_logistic(fit_x, fit_y, classifier.head_config.num_labels, c)
        with torch.no_grad():
            accuracy = 100.0 * (linear(val_x).argmax(-1) == val_y).float().mean().item()
        if best is None or accuracy > best[0]:
            best = (accuracy, c, linear)
    accuracy, c, linear = best
    with torch.no_grad():
        classifier.head.classifier.weight.copy_(linear.weight)
        classifier.head.classifier.bias.copy_(linear.bias)
    return {"step": 0, "probe_c": c, "probe_validation_accuracy": accuracy}


def train_on(
    workspace: Workspace,
    classifier: PromptedClassifier,
    config: TrainConfig,
    device: torch.device,
    reporter: Reporter = SILENT,
    description: str = "prompt tuning",
) -> TrainResult:
    """:func:`train_prompt` on a workspace's training and validation splits."""
    return train_prompt(
        classifier, workspace.train, workspace.validation, config, device, workspace.pad_token_id, reporter, description
    )


def precision_probe(
    classifier: PromptedClassifier, train: EncodedSplit, config: TrainConfig, device: torch.device, pad_token_id: int
):
    """The step :func:`~skeleton.core.precision.choose_precision` times: one forward and backward pass, in
    bf16 autocast (``True``) or fp32, of a copy of ``classifier`` with every weight taking gradients (what
    full fine-tuning computes), on one training batch as training draws them (labels alone, no
    distillation). Nothing is updated; the gradients are dropped after each pass."""
    model = copy.deepcopy(classifier).to(device)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    _train_mode(model, config.backbone_dropout)
    batch = next(iterate_batches(train, config.batch_size, pad_token_id, shuffle=True, seed=config.seed)).to(device)
    labels_only = replace(config, distill=0.0)

    def step(bf16: bool) -> None:
        with autocast(device, "bf16" if bf16 else "fp32"):
            loss = _loss(model(**batch.inputs()), batch, labels_only)
        loss.backward()
        model.zero_grad(set_to_none=True)
        synchronize(device)

    return step


def training_precision(
    asked: str, workspace: Workspace, classifier_of, config: TrainConfig, device: torch.device, reporter: Reporter
) -> PrecisionChoice:
    """The precision training runs in for ``asked`` (``auto`` times ``precision_probe`` on the model
    ``classifier_of()`` builds, only where the device has native bf16), said in one line."""
    probe = lambda: precision_probe(classifier_of(), workspace.train, config, device, workspace.pad_token_id)  # noqa: E731
    choice = choose_precision(asked, device, probe)
    reporter.message(f"training precision: {choice.used} ({choice.why})")
    return choice


@dataclass
class TuneResult:
    """Metrics of the tuned model, the majority-class floor beside them, and a warning when the model
    does not clear it (``weak_prior``)."""

    output: str
    validation: dict[str, float]
    test: dict[str, float]
    train: TrainResult
    majority_class: dict[str, dict[str, float]] = field(default_factory=dict)
    weak_prior: str | None = None

    def to_dict(self) -> dict:
        return {
            "output": self.output,
            "validation": self.validation,
            "test": self.test,
            "majority_class": self.majority_class,
            "weak_prior": self.weak_prior,
            "train": self.train.to_dict(),
        }


def tune(config: TuneConfig, reporter: Reporter = SILENT) -> TuneResult:
    """Prompt-tune, evaluate on validation and test, save prompt + head + report to ``config.output``."""
    config = config.resolved()
    device = resolve_device(config.device)
    workspace = Workspace.open(config.data, config.model, device, reporter)
    output = Path(config.output or workspace.default_output("-prompt" if config.train.trains == "prompt" else "-tuned"))
    with atomic_directory(output, overwrite=config.overwrite) as work:
        new_classifier = functools.partial(workspace.new_classifier, seed=config.train.seed)
        precision = training_precision(config.precision, workspace, new_classifier, config.train, device, reporter)
        train = replace(config.train, precision=precision.used)
        classifier = new_classifier()
        result = train_on(workspace, classifier, train, device, reporter)
        metrics = workspace.evaluate_splits(classifier, device, config.train.eval_batch_size)
        validation, test = metrics["validation"], metrics["test"]
        majority = workspace.majority_metrics()
        weak_prior = workspace.prior_problem(validation["accuracy"], CompressConfig.min_gain)
        save_classifier(classifier, workspace.tokenizer, work, None, skeleton_meta(workspace))
        report = TuneReport(
            config={"data": asdict(config.data), "model": config.model.to_dict(), "train": train.to_dict()},
            data=workspace.data.summary(),
            device=str(device),
            training_precision=precision.to_dict(),
            validation=validation,
            test=test,
            majority_class=majority,
            weak_prior=weak_prior,
            training=result.to_dict(),
            versions=library_versions(),
        )
        report.save(work / REPORT_FILE)
    return TuneResult(str(output), validation, test, result, majority, weak_prior)


def skeleton_meta(workspace: Workspace, num_virtual_tokens: int | None = None) -> ModelMeta:
    """``skeleton.json``: what :func:`skeleton.load` needs to turn texts into inputs; ``num_virtual_tokens``:
    the saved model's soft-prompt length when it differs from step 1's (a Skeleton model's shortened prompt)."""
    return ModelMeta(
        task=workspace.spec.name,
        base_model=workspace.model_path,
        head=workspace.head,
        use_template=workspace.use_template,
        max_length=workspace.model_config.max_length,
        num_virtual_tokens=workspace.model_config.prompt_tokens if num_virtual_tokens is None else num_virtual_tokens,
        label_names=list(workspace.spec.label_names),
        task_spec=workspace.spec.to_dict(),
    )
