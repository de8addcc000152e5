"""``skeleton analyze DIR``: where the task lives in a compressed model, by every scorer.

For the prompt-tuned model a compress run kept (``DIR/prompt_tuned``):

- suppression curves: validation accuracy with the top 1-15% of FFN neurons by each scorer zeroed,
  beside as many random neurons (a neuron is zeroed by zeroing its activation, the second FFN
  linear's input, whatever the activation function);
- the per-layer share of each scorer's top neurons, and of the neurons the Skeleton model kept;
- Spearman correlation between the scorers' rankings of all neurons;
- accuracy of the prompt-tuned and the Skeleton model on extra labelled TSV files (``--data``).

Written to ``DIR/analysis/``: analysis.json (everything needed to redraw), analysis.md,
suppression.png and layers.png, through a hidden directory renamed into place when whole.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from skeleton.core.architectures import ffn_layers
from skeleton.core.config import AnalyzeConfig, CompressConfig, TrainConfig
from skeleton.core.data import DataConfig, read_tsv
from skeleton.core.device import resolve_device
from skeleton.core.errors import SkeletonError
from skeleton.core.evaluation import evaluate
from skeleton.core.file_names import (
    ANALYSIS_DIR,
    ANALYSIS_JSON,
    ANALYSIS_MD,
    LAYERS_PNG,
    PLAN_FILE,
    PROMPT_TUNED_DIR,
    REPORT_FILE,
    SCORES_FILE,
    SUPPRESSION_PNG,
)
from skeleton.core.modeling import prompt_fingerprint
from skeleton.core.outputs import atomic_directory, library_versions
from skeleton.core.progress import SILENT, Reporter
from skeleton.core.reports import AnalysisReport, CompareReport, CompressReport
from skeleton.core.scores_and_plans import NeuronScores, PruningPlan
from skeleton.core.workspace import ModelConfig, Workspace
from skeleton.deploy.loading import load
from skeleton.measure.comparison import COMPARE_JSON, scores_path
from skeleton.method.scoring import score_neurons, scoring_context

RANDOM = "random"
EVAL_BATCH_SIZE = 128


@contextmanager
def suppressed(classifier, masks: list[torch.Tensor]):
    """Zero the FFN neurons where ``masks`` (per layer, (intermediate,) bool) is True, during the block."""
    handles = []
    for layer, mask in zip(ffn_layers(classifier.backbone), masks, strict=True):
        keep = (~mask).to(layer.ffn_out.weight.dtype).to(layer.ffn_out.weight.device)

        def zero(_module, args, keep=keep):
            return (args[0] * keep,)  # (batch, tokens, intermediate)

        handles.append(layer.ffn_out.register_forward_pre_hook(zero))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def top_masks(scores: list[torch.Tensor], count: int) -> list[torch.Tensor]:
    """Per layer, True for the ``count`` highest-scoring neurons over all layers (ties: lower index first)."""
    flat = torch.cat(scores)
    order = torch.argsort(flat, descending=True, stable=True)[:count]
    chosen = torch.zeros(len(flat), dtype=torch.bool)
    chosen[order] = True
    return list(torch.split(chosen, [len(s) for s in scores]))


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a.numpy(), b.numpy()).statistic)


def _load_run(directory: Path):
    if not (directory / REPORT_FILE).is_file() or not (directory / PROMPT_TUNED_DIR).is_dir():
        raise SkeletonError(
            f"{directory} is not a directory written by 'skeleton compress' "
            f"(it needs {REPORT_FILE} and {PROMPT_TUNED_DIR}/)"
        )
    report = CompressReport.load(directory / REPORT_FILE)
    settings = report.config
    compress = CompressConfig(
        data=DataConfig(**settings["data"]),
        model=ModelConfig(**settings["model"]),
        tune=TrainConfig(**settings["tune"]),
        attribution_samples=int(settings.get("attribution_samples", CompressConfig.attribution_samples)),
    )
    return report, compress


def _scores(name, classifier, workspace, run, directory, settings: CompressConfig, context, device, random_seed):
    """A scorer's scores of the prompt-tuned model: the run's own file for the run's scorer."""
    if name == run.config.get("scorer") and (directory / SCORES_FILE).is_file():
        return NeuronScores.load(directory / SCORES_FILE)
    seed = random_seed if name == RANDOM else None
    return score_neurons(name, classifier, workspace, settings, device, context, seed=seed)


def _reusable_scores(config: AnalyzeConfig, classifier) -> dict[str, tuple[list[torch.Tensor], float]]:
    """Scores a ``skeleton compare`` run saved for the same prompt-tuned model, with their wall times."""
    if config.scores_from is None:
        return {}
    folder = Path(config.scores_from)
    if not (folder / COMPARE_JSON).is_file():
        raise SkeletonError(f"--scores-from {folder}: not a 'skeleton compare' output ({COMPARE_JSON} is missing)")
    report = CompareReport.load(folder / COMPARE_JSON)
    if report.prompt_fingerprint != prompt_fingerprint(classifier):
        raise SkeletonError(f"--scores-from {folder}: its scores are of another prompt-tuned model")
    return {
        row["scorer"]: (NeuronScores.load(scores_path(folder, row["scorer"])).ffn, row["scoring_seconds"])
        for row in report.rows
        if scores_path(folder, row["scorer"]).is_file()
    }


def _suppression_curves(classifier, scores: dict, config: AnalyzeConfig, accuracy, reporter: Reporter) -> dict:
    """Per scorer, the validation accuracy (``accuracy()``) with each share of its top neurons zeroed."""
    total = sum(len(s) for s in next(iter(scores.values())))
    curves = {}
    with reporter.bar("suppression curves", len(scores) * len(config.suppression_percents)) as bar:
        for name, values in scores.items():
            curves[name] = []
            for percent in config.suppression_percents:
                count = int(round(percent / 100 * total))
                with suppressed(classifier, top_masks(values, count)):
                    curves[name].append({"percent": percent, "neurons": count, "validation_accuracy": accuracy()})
                bar.advance()
    return curves


def _layer_shares(scores: dict, top_percent: float, plan_file: Path) -> tuple[dict, dict | None]:
    """(per scorer, the share of its top neurons in each layer; the Skeleton's kept neurons per layer)."""
    widths = [len(s) for s in next(iter(scores.values()))]
    top_count = max(1, int(round(top_percent / 100 * sum(widths))))
    layers = {
        name: [int(mask.sum()) / top_count for mask in top_masks(values, top_count)] for name, values in scores.items()
    }
    plan = PruningPlan.load(plan_file) if plan_file.is_file() else None
    if plan is None or len(plan.kept_sizes) != len(widths):  # no plan, or whole layers removed
        return layers, None
    return layers, {
        "kept_sizes": plan.kept_sizes,
        "share_of_kept": [size / sum(plan.kept_sizes) for size in plan.kept_sizes],
        "kept_per_layer": [size / width for size, width in zip(plan.kept_sizes, widths, strict=True)],
    }


def _extra_splits(paths: tuple[str, ...], workspace: Workspace, max_length: int) -> dict:
    """Each ``--data`` file, read and encoded as the task's splits are (checked before any work)."""
    for path in map(Path, paths):
        if not path.is_file():
            raise SkeletonError(f"--data {path}: no such file")
    return {Path(path).name: workspace.encode(read_tsv(Path(path), workspace.spec), max_length) for path in paths}


def _all_scores(
    config: AnalyzeConfig, run, compress: CompressConfig, directory: Path, classifier, workspace, device, reporter
):
    """({scorer: per-layer scores}, {scorer: seconds}) for the scorers asked for and the random baseline."""
    settings = replace(compress, scorer_samples=config.samples, skill_prompts=config.skill_prompts)
    cache = Path(config.skill_cache) if config.skill_cache else directory / "skill_prompts"
    context = scoring_context(workspace, settings, cache, reporter)
    reused = _reusable_scores(config, classifier)
    scores, seconds = {}, {}
    for name in dict.fromkeys((*config.scorers, RANDOM)):
        if name in reused and name != RANDOM:
            scores[name], seconds[name] = reused[name]
            reporter.message(f"{name}: reusing the scores of {config.scores_from}")
            continue
        reporter.message(f"scoring with {name}")
        started = time.perf_counter()
        scores[name] = _scores(name, classifier, workspace, run, directory, settings, context, device, config.seed).ffn
        seconds[name] = time.perf_counter() - started
    return scores, seconds


def _extra_accuracy(directory: Path, classifier, splits: dict, workspace: Workspace, device) -> dict:
    """The prompt-tuned and the Skeleton model's metrics on each extra file."""
    slim = load(directory, device=str(device)).classifier
    pad, metrics = workspace.pad_token_id, (workspace.spec.metrics, workspace.spec.label_names)
    return {
        name: {
            "rows": len(split),
            "prompt_tuned": evaluate(classifier, split, device, EVAL_BATCH_SIZE, pad, *metrics),
            "skeleton": evaluate(slim, split, device, EVAL_BATCH_SIZE, pad, *metrics),
        }
        for name, split in splits.items()
    }


def analyze(directory: str | Path, config: AnalyzeConfig, reporter: Reporter = SILENT) -> AnalysisReport:
    """Run the analyses of the module docstring on a compressed directory; returns the report."""
    directory = Path(directory)
    run, compress = _load_run(directory)
    device = resolve_device(config.device)
    reporter.message(f"loading {run.task} and {compress.model.model} (device {device})")
    workspace = Workspace(compress.data, compress.model)
    extra_splits = _extra_splits(config.data, workspace, compress.model.max_length)
    classifier = workspace.load_classifier(directory / PROMPT_TUNED_DIR).to(device)
    scores, seconds = _all_scores(config, run, compress, directory, classifier, workspace, device, reporter)

    def accuracy(model, split) -> float:
        return evaluate(model, split, device, EVAL_BATCH_SIZE, workspace.pad_token_id)["accuracy"]

    teacher = accuracy(classifier, workspace.validation)
    curves = _suppression_curves(
        classifier, scores, config, lambda: accuracy(classifier, workspace.validation), reporter
    )
    layers, kept = _layer_shares(scores, config.top_percent, directory / PLAN_FILE)
    names = [name for name in scores if name != RANDOM or RANDOM in config.scorers]
    robustness = _extra_accuracy(directory, classifier, extra_splits, workspace, device) if extra_splits else {}
    report = AnalysisReport(
        task=run.task,
        model=run.model,
        device=str(device),
        neurons=sum(len(s) for s in scores[RANDOM]),
        layer_widths=[len(s) for s in scores[RANDOM]],
        validation_rows=len(workspace.validation),
        prompt_tuned_validation_accuracy=teacher,
        run_scorer=run.config.get("scorer"),
        scoring_seconds=seconds,
        suppression={
            name: [{"percent": 0.0, "neurons": 0, "validation_accuracy": teacher}, *points]
            for name, points in curves.items()
        },
        top_percent=config.top_percent,
        top_neurons_per_layer=layers,
        skeleton_kept=kept,
        spearman={a: {b: spearman(torch.cat(scores[a]), torch.cat(scores[b])) for b in names} for a in names},
        extra_data=robustness,
        config=config.to_dict(),
        versions=library_versions(),
    )
    with atomic_directory(directory / ANALYSIS_DIR, overwrite=True) as work:
        report.save(work / ANALYSIS_JSON)
        figures = report.to_dict()
        (work / ANALYSIS_MD).write_text(markdown(figures))
        plot_suppression(figures, work / SUPPRESSION_PNG)
        plot_layers(figures, work / LAYERS_PNG)
    return report


def markdown(report: dict) -> str:
    """The analysis as Markdown tables."""
    curves = report["suppression"]
    percents = [p["percent"] for p in next(iter(curves.values()))][1:]
    lines = [
        f"# Neuron analysis: {report['task']}",
        "",
        f"Model: {report['model']}; {report['neurons']} FFN neurons in {len(report['layer_widths'])} layers; "
        f"prompt-tuned validation accuracy {report['prompt_tuned_validation_accuracy']:.2f} "
        f"({report['validation_rows']} rows).",
        "",
        "## Suppression: validation accuracy with the top neurons zeroed",
        "",
        "| scorer | " + " | ".join(f"{p:g}%" for p in percents) + " | scoring s |",
        "|---|" + "---|" * (len(percents) + 1),
    ]
    for name, points in curves.items():
        label = "random neurons" if name == RANDOM else name
        values = " | ".join(f"{p['validation_accuracy']:.2f}" for p in points[1:])
        lines.append(f"| {label} | {values} | {report['scoring_seconds'][name]:.1f} |")
    layer_count = len(report["layer_widths"])
    lines += [
        "",
        f"## Where the top {report['top_percent']:g}% of neurons sit (share per layer)",
        "",
        "| scorer | " + " | ".join(f"layer {i}" for i in range(layer_count)) + " |",
        "|---|" + "---|" * layer_count,
    ]
    for name, shares in report["top_neurons_per_layer"].items():
        label = "random neurons" if name == RANDOM else name
        lines.append(f"| {label} | " + " | ".join(f"{100 * s:.1f}%" for s in shares) + " |")
    kept = report["skeleton_kept"]
    if kept:
        lines.append(
            "| Skeleton's kept neurons | " + " | ".join(f"{100 * s:.1f}%" for s in kept["share_of_kept"]) + " |"
        )
        lines.append("| (kept of each layer) | " + " | ".join(f"{100 * s:.1f}%" for s in kept["kept_per_layer"]) + " |")
    names = list(report["spearman"])
    lines += [
        "",
        "## Spearman correlation between the scorers' rankings",
        "",
        "| | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for a in names:
        lines.append(f"| {a} | " + " | ".join(f"{report['spearman'][a][b]:.3f}" for b in names) + " |")
    if report["extra_data"]:
        lines += ["", "## Extra data", "", "| file | rows | prompt-tuned | Skeleton |", "|---|---|---|---|"]
        for name, row in report["extra_data"].items():

            def text(metrics):
                return ", ".join(f"{k} {v:.2f}" for k, v in metrics.items())

            lines.append(f"| {name} | {row['rows']} | {text(row['prompt_tuned'])} | {text(row['skeleton'])} |")
    return "\n".join(lines) + "\n"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_suppression(report: dict, path: Path) -> None:
    """Validation accuracy against the share of top neurons zeroed, one line per scorer."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    for name, points in report["suppression"].items():
        style = {"color": "grey", "linestyle": "--"} if name == RANDOM else {"marker": "o"}
        label = "random neurons" if name == RANDOM else name
        axis.plot([p["percent"] for p in points], [p["validation_accuracy"] for p in points], label=label, **style)
    axis.set_xlabel("top FFN neurons zeroed (%)")
    axis.set_ylabel("validation accuracy (%)")
    axis.set_title(f"{report['task']}: suppressing each scorer's top neurons", fontsize=10)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_layers(report: dict, path: Path) -> None:
    """Per layer, the share of each scorer's top neurons (bars) and of the Skeleton's kept neurons."""
    plt = _pyplot()
    series = dict(report["top_neurons_per_layer"])
    if report["skeleton_kept"]:
        series["Skeleton kept"] = report["skeleton_kept"]["share_of_kept"]
    layers = np.arange(len(report["layer_widths"]))
    width = 0.8 / max(1, len(series))
    figure, axis = plt.subplots(figsize=(7.2, 4.2))
    for index, (name, shares) in enumerate(series.items()):
        label = "random neurons" if name == RANDOM else name
        axis.bar(layers + index * width, [100 * s for s in shares], width, label=label)
    axis.set_xticks(layers + width * (len(series) - 1) / 2, [str(i) for i in layers])
    axis.set_xlabel("layer")
    axis.set_ylabel("share (%)")
    axis.set_title(f"{report['task']}: where the top {report['top_percent']:g}% of neurons sit", fontsize=10)
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


__all__ = ["AnalyzeConfig", "analyze", "markdown", "spearman", "suppressed", "top_masks"]
