"""``skeleton compare``: scorers side by side on one prompt-tuned model at one kept ratio.

The paper's Figure 5 experiment, extended to the companion papers' scorers: every scorer ranks the
FFN neurons of the same prompt-tuned model, the same share of neurons is kept, and each pruned model
is judged on validation and test before and after knowledge condensation, with each scorer's wall
time. The report (compare.json, compare.md, compare.png) is written through a hidden directory that
is renamed into place only when it is whole.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from skeleton.core.config import CompareConfig
from skeleton.core.device import resolve_device
from skeleton.core.modeling import prompt_fingerprint, save_prompt_and_head
from skeleton.core.outputs import atomic_directory, library_versions
from skeleton.core.progress import SILENT, Reporter
from skeleton.core.reports import CompareReport
from skeleton.core.workspace import Workspace
from skeleton.method.planning import Planner
from skeleton.method.scoring import score_neurons, scoring_context
from skeleton.method.tuning import train_on

COMPARE_JSON = "compare.json"
COMPARE_MD = "compare.md"
COMPARE_PNG = "compare.png"


def scores_path(folder: Path, scorer: str) -> Path:
    """Where a compare run keeps a scorer's scores (``skeleton analyze --scores-from`` reads them)."""
    return folder / f"scores_{scorer}.safetensors"


@dataclass
class CompareResult:
    output: str
    report: CompareReport


def _prompt_tuned(workspace: Workspace, config: CompareConfig, device, work: Path, reporter: Reporter):
    """The prompt-tuned classifier every scorer ranks: the given prompt, or one tuned now (and kept)."""
    settings = config.compress
    if settings.prompt:
        reporter.message(f"reusing the tuned prompt in {settings.prompt}")
        return workspace.load_classifier(settings.prompt).to(device), None
    classifier = workspace.new_classifier(seed=settings.tune.seed).to(device)
    training = train_on(workspace, classifier, settings.tune, device, reporter, "prompt tuning")
    save_prompt_and_head(classifier, work / "prompt_tuned")
    return classifier, training.seconds


def compare(config: CompareConfig, reporter: Reporter = SILENT) -> CompareResult:
    """Score, prune to ``kept_ratio``, evaluate and condense with each scorer; write the report."""
    settings = config.compress.resolved()
    # the paper's experiment (its section 5.3): scorers compared under prompt-only condensation
    settings = replace(settings, condense=replace(settings.condense, trains="prompt", distill=0.0))
    device = resolve_device(settings.device)
    workspace = Workspace.open(settings.data, settings.model, device, reporter)
    output = Path(config.output or workspace.default_output("-compare"))
    with atomic_directory(output, overwrite=config.overwrite) as work:
        classifier, tuning_seconds = _prompt_tuned(workspace, config, device, work, reporter)
        batch_size = settings.condense.eval_batch_size
        prompt_tuned = workspace.evaluate_splits(classifier, device, batch_size)
        cache = Path(config.skill_cache) if config.skill_cache else work / "skill_prompts"
        context = scoring_context(workspace, settings, cache, reporter)
        rows = []
        for name in config.scorers:
            reporter.message(f"{name}: scoring, pruning to kept ratio {config.kept_ratio:.2f}")
            started = time.perf_counter()
            scores = score_neurons(name, classifier, workspace, settings, device, context)
            scoring_seconds = time.perf_counter() - started
            scores.save(scores_path(work, name))
            pruned, plan = Planner(scores, settings).prune(classifier, config.kept_ratio)
            row = {
                "scorer": name,
                "kept_fraction": plan.kept_fraction,
                "kept_sizes": plan.kept_sizes,
                "scoring_seconds": scoring_seconds,
                "details": {k: v for k, v in scores.extra.items() if k != "seconds"},
                "before_condensation": workspace.evaluate_splits(pruned, device, batch_size),
            }
            if config.after_condensation:
                clock = time.perf_counter()
                train_on(workspace, pruned, settings.condense, device, reporter, f"{name}: condensing")
                row["condensation_seconds"] = time.perf_counter() - clock
                row["after_condensation"] = workspace.evaluate_splits(pruned, device, batch_size)
            rows.append(row)
            del pruned
            reporter.message(f"  {_row_text(row)}")
        report = CompareReport(
            task=workspace.spec.name,
            model=workspace.model_path,
            device=str(device),
            kept_ratio=config.kept_ratio,
            prompt_tuned=prompt_tuned,
            prompt_fingerprint=prompt_fingerprint(classifier),
            prompt_tuning_seconds=tuning_seconds,
            majority_class=workspace.majority_metrics(),
            data=workspace.data.summary(),
            rows=rows,
            config=config.to_dict(),
            versions=library_versions(),
        )
        report.save(work / COMPARE_JSON)
        figures = report.to_dict()
        (work / COMPARE_MD).write_text(markdown(figures))
        plot(figures, work / COMPARE_PNG)
    return CompareResult(str(output), report)


def _row_text(row: dict) -> str:
    text = f"validation {row['before_condensation']['validation']['accuracy']:.2f} before condensation"
    if "after_condensation" in row:
        text += f", {row['after_condensation']['validation']['accuracy']:.2f} after"
    return text + f"; scoring {row['scoring_seconds']:.1f}s"


def markdown(report: dict) -> str:
    """The comparison table, prompt-tuned and majority class first."""
    condensed = any("after_condensation" in row for row in report["rows"])
    columns = ["scorer", "FFN neurons kept", "validation acc", "test acc"]
    if condensed:
        columns += ["validation acc, condensed", "test acc, condensed"]
    columns += ["scoring s"] + (["condensation s"] if condensed else [])
    tuned, majority = report["prompt_tuned"], report["majority_class"]
    lines = [
        f"# Scorers at kept ratio {report['kept_ratio']:.2f}: {report['task']}",
        "",
        f"Model: {report['model']}; device {report['device']}. Accuracy in percent; the same prompt-tuned "
        "model is pruned by every scorer to the same share of FFN neurons.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]

    def line(cells: list[str]) -> str:  # missing cells at the end are left empty
        return "| " + " | ".join(cells + [""] * (len(columns) - len(cells))) + " |"

    for name, metrics in (("majority class", majority), ("prompt-tuned", tuned)):
        lines.append(
            line([name, "100%", f"{metrics['validation']['accuracy']:.2f}", f"{metrics['test']['accuracy']:.2f}"])
        )
    for row in report["rows"]:
        before = row["before_condensation"]
        cells = [
            row["scorer"],
            f"{100 * row['kept_fraction']:.1f}%",
            f"{before['validation']['accuracy']:.2f}",
            f"{before['test']['accuracy']:.2f}",
        ]
        if condensed:
            after = row.get("after_condensation")
            cells += (
                [f"{after['validation']['accuracy']:.2f}", f"{after['test']['accuracy']:.2f}"] if after else ["", ""]
            )
        cells.append(f"{row['scoring_seconds']:.1f}")
        if condensed:
            cells.append(f"{row.get('condensation_seconds', 0):.0f}")
        lines.append(line(cells))
    notes = [f"- {row['scorer']}: {_details_text(row['details'])}" for row in report["rows"] if row["details"]]
    if notes:
        lines += ["", "Scorer details:", *notes]
    return "\n".join(lines) + "\n"


def _details_text(details: dict) -> str:
    def value(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return str(v)

    return ", ".join(f"{k.replace('_', ' ')} {value(v)}" for k, v in details.items())


def plot(report: dict, path: Path) -> None:
    """Grouped bars: each scorer's validation and test accuracy before (and after) condensation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = report["rows"]
    series = [("validation", "before_condensation"), ("test", "before_condensation")]
    if any("after_condensation" in row for row in rows):
        series += [("validation", "after_condensation"), ("test", "after_condensation")]
    positions = np.arange(len(rows))
    width = 0.8 / len(series)
    figure, axis = plt.subplots(figsize=(7.2, 4.2))
    for index, (split, stage) in enumerate(series):
        values = [row[stage][split]["accuracy"] if stage in row else np.nan for row in rows]
        axis.bar(positions + index * width, values, width, label=f"{split}, {stage.replace('_', ' ')}")
    axis.axhline(report["prompt_tuned"]["validation"]["accuracy"], color="black", linestyle="--", linewidth=0.8)
    axis.axhline(report["majority_class"]["validation"]["accuracy"], color="grey", linestyle=":", linewidth=0.8)
    axis.set_xticks(positions + width * (len(series) - 1) / 2, [row["scorer"] for row in rows])
    axis.set_ylabel("accuracy (%)")
    axis.set_title(
        f"{report['task']}: scorers at kept ratio {report['kept_ratio']:.2f} "
        "(dashed: prompt-tuned validation; dotted: majority class)",
        fontsize=9,
    )
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


__all__ = ["CompareResult", "compare", "markdown", "plot"]
