"""``skeleton bench``'s report: JSON with everything needed to redraw it, a Markdown summary and
PNG plots, written into ``DIR/bench/`` through temporary files so a reader never sees half a report.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from skeleton.core.file_names import PLOT_BY_BATCH, PLOT_BY_LENGTH, PLOT_LATENCY, REPORT_JSON, REPORT_MD
from skeleton.core.reports import BenchReport


def write_report(folder: Path, report: dict) -> None:
    """Write bench.json, bench.md and the plots into ``folder``, each replaced only when all are made."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".report-") as scratch:
        scratch = Path(scratch)
        (scratch / REPORT_JSON).write_text(json.dumps(report, indent=2))
        (scratch / REPORT_MD).write_text(markdown(report))
        plot(report, scratch)
        for path in scratch.iterdir():
            shutil.move(str(path), str(folder / path.name))


def _grid(report: dict) -> tuple[list[int], list[int]]:
    batches = sorted({p["batch"] for p in report["points"]})
    lengths = sorted({p["length"] for p in report["points"]})
    return batches, lengths


def _at(report: dict, batch: int, length: int) -> dict:
    return next(p for p in report["points"] if p["batch"] == batch and p["length"] == length)


def headline_range(report: dict) -> tuple[float, float] | None:
    """The smallest and largest headline speed-up over the grid (None when nothing shippable ran)."""
    return BenchReport.from_dict(report).headline_range()


def _turns(calls_per_turn: int) -> str:
    """How each round called a contender (:func:`skeleton.core.timing.time_alternating`)."""
    if calls_per_turn == 1:
        return ", one call of each per round (each timed just after the others ran: caches cold)"
    return f", {calls_per_turn} calls of each in a row per round, the last timed (its own model in the caches)"


# bench's timing options as bench.md states them: (config key, the sentence when on, the sentence when off)
_OPTIONS = (
    (
        "head_to_head",
        "Each runtime's two models alternated on their own, one runtime after the other (a headline across two "
        "runtimes compares two such alternations).",
        "Every model/runtime pair alternated in one rotation.",
    ),
    (
        "static_batch_one",
        "OpenVINO ran batches of one on graphs compiled for each length up to 128 tokens, both models (as "
        "`serve --static-batch-one`).",
        "OpenVINO ran every shape on its dynamic graph.",
    ),
)


def _options(config: dict) -> str:
    """How ``--head-to-head`` and ``--static-batch-one`` were set, a sentence each."""
    return "".join(" " + (on if config.get(key) else off) for key, on, off in _OPTIONS)


def _teacher(report: dict) -> str:
    """What the unpruned model is called: how it was made (``teacher`` in reports of bench since 2026-12-04)."""
    return report.get("teacher") or "unpruned"


def markdown(report: dict) -> str:
    batches, lengths = _grid(report)
    machine = report["machine"]
    lines = [
        f"# Speed-up of the Skeleton model ({report['task']}) over the {_teacher(report)} model",
        "",
        f"{machine['cpu']}, {machine['cores']} cores, {machine['threads']} threads, flags "
        f"{', '.join(machine['cpu_flags']) or 'none'}; torch {report['versions'].get('torch')}, onnxruntime "
        f"{report['versions'].get('onnxruntime')}. Random token ids; per grid point every model/runtime pair "
        "is warmed up, then their calls alternate in one process; medians of "
        f"{report['config']['min_repeats']}-{report['config']['repeats']} rounds"
        + _turns(report["config"].get("calls_per_turn", 1))
        + "."
        + _options(report["config"]),
        "",
        f"## Headline: fastest shippable Skeleton runtime vs the {_teacher(report)} model's fastest runtime",
        "",
    ]
    span = headline_range(report)
    if span:
        lines += [f"Range over the grid: **{span[0]:.2f}x to {span[1]:.2f}x**.", ""]
    lines += ["| batch \\ input tokens | " + " | ".join(str(n) for n in lengths) + " |"]
    lines += ["|---" * (len(lengths) + 1) + "|"]
    for batch in batches:
        cells = []
        for length in lengths:
            head = _at(report, batch, length)["headline"]
            cells.append(
                "-"
                if head is None
                else f"{head['speedup']:.2f}x ({head['skeleton_runtime']} {head['skeleton_ms']:.1f} ms vs "
                f"{head['prompt_tuned_runtime']} {head['prompt_tuned_ms']:.1f} ms)"
            )
        lines.append(f"| {batch} | " + " | ".join(cells) + " |")
    losses = [p for p in report["points"] if p["headline"] and p["headline"]["speedup"] < 1.0]
    if losses:
        shapes = ", ".join(f"{p['batch']}x{p['length']}" for p in losses)
        slower = f"**The Skeleton model is slower than the {_teacher(report)} model's fastest runtime at {shapes}.**"
        lines += ["", slower]
    lines += _predicted_table(report)
    lines += _runtime_table(report) + _latency_table(report) + _end_to_end_table(report) + _contender_notes(report)
    return "\n".join(lines) + "\n"


def _predicted_table(report: dict) -> list[str]:
    """Predicted (the compress run's latency table) beside measured headline speed-ups."""
    predicted = report.get("predicted_speedup") or {}
    measured = {f"{p['batch']}x{p['length']}": p["headline"] for p in report["points"]}
    rows = [(shape, value, measured.get(shape)) for shape, value in predicted.items()]
    if not rows:
        return []
    lines = _section(
        "Predicted by the latency table vs measured (batch x input tokens)", ["shape", "predicted", "measured"]
    )
    for shape, value, head in rows:
        seen = "not on the grid" if head is None else f"{head['speedup']:.2f}x"
        lines.append(f"| {shape} | {value:.2f}x | {seen} |")
    return lines


def _section(title: str, columns: list[str]) -> list[str]:
    """A Markdown section heading and the header rows of its table."""
    return ["", f"## {title}", "", "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]


def _runtime_table(report: dict) -> list[str]:
    runtimes = sorted({r for p in report["points"] for r in p["speedup"]})
    lines = _section(
        "Same runtime on both sides: speed-up, and achieved / ideal (analytic multiply-accumulates)",
        ["batch x tokens", "ideal", *runtimes],
    )
    for point in report["points"]:
        cells = [
            f"{point['speedup'][r]:.2f}x ({point['achieved_over_ideal'][r]:.2f})" if r in point["speedup"] else "-"
            for r in runtimes
        ]
        lines.append(
            f"| {point['batch']}x{point['length']} | {point['ideal_speedup']:.2f}x | " + " | ".join(cells) + " |"
        )
    return lines


def _latency_table(report: dict) -> list[str]:
    keys = [f"{c['model']}/{c['runtime']}" for c in report["contenders"]]
    lines = _section("Latency, median ms (p10-p90)", ["batch x tokens", *keys])
    for point in report["points"]:
        cells = []
        for key in keys:
            t = point["latency"].get(key)
            cells.append("-" if t is None else f"{t['median_ms']:.1f} ({t['p10_ms']:.1f}-{t['p90_ms']:.1f})")
        lines.append(f"| {point['batch']}x{point['length']} | " + " | ".join(cells) + " |")
    return lines


def _end_to_end_table(report: dict) -> list[str]:
    rows = report.get("end_to_end") or []
    if not rows:
        return []
    lines = [
        "",
        f"## Real sentences of {report['config']['data']}, end to end (tokenizer and template included)",
        "",
        f"| batch | padded tokens | Skeleton (fastest shippable) | {_teacher(report)} (fastest) | speed-up |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        head = row["headline"]
        if head is None:
            continue
        slim, base = row["latency"][head["skeleton"]], row["latency"][head["prompt_tuned"]]
        lines.append(
            f"| {row['batch']} | {row['padded_tokens']} | {head['skeleton']} {slim['median_ms']:.1f} ms | "
            f"{head['prompt_tuned']} {base['median_ms']:.1f} ms | {head['speedup']:.2f}x |"
        )
    return lines


def _contender_notes(report: dict) -> list[str]:
    lines = ["", "## Runtimes", ""]
    for c in report["contenders"]:
        if c["model"] == "prompt_tuned":
            status = "the teacher, timed on every runtime"
        else:
            status = "shippable (offered by `skeleton predict`)" if c["shippable"] else "timed, not shippable"
        lines.append(f"- {c['model']}/{c['runtime']}: {status}" + (f" ({c['note']})" if c["note"] else ""))
    return lines


def plot(report: dict, folder: Path) -> None:
    """speedup_vs_batch.png, speedup_vs_length.png and latency.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches, lengths = _grid(report)
    for filename, xs, series, xlabel, label in (
        (PLOT_BY_BATCH, batches, lengths, "batch size", "{} tokens"),
        (PLOT_BY_LENGTH, lengths, batches, "input tokens", "batch {}"),
    ):
        figure, axis = plt.subplots(figsize=(6.4, 4.2))
        for value in series:
            ys = []
            for x in xs:
                point = _at(report, x, value) if filename == PLOT_BY_BATCH else _at(report, value, x)
                ys.append(point["headline"]["speedup"] if point["headline"] else float("nan"))
            axis.plot(xs, ys, marker="o", label=label.format(value))
        axis.axhline(1.0, color="grey", linewidth=0.8)
        axis.set_xscale("log", base=2)
        axis.set_xticks(xs, [str(x) for x in xs])
        axis.set_xlabel(xlabel)
        axis.set_ylabel("speed-up (x)")
        axis.set_title(f"Skeleton (fastest shippable) vs {_teacher(report)} (fastest)", fontsize=10)
        axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(folder / filename, dpi=110)
        plt.close(figure)
    _plot_latency(report, folder, plt)


def _plot_latency(report: dict, folder: Path, plt) -> None:
    batches, lengths = _grid(report)
    runtimes = sorted({c["runtime"] for c in report["contenders"]})
    figure, axes = plt.subplots(1, len(lengths), figsize=(3.2 * len(lengths), 3.6), sharey=True, squeeze=False)
    colors = {r: f"C{i}" for i, r in enumerate(runtimes)}
    for axis, length in zip(axes[0], lengths, strict=True):
        for runtime in runtimes:
            for model, style in (("skeleton", "-"), ("prompt_tuned", "--")):
                key = f"{model}/{runtime}"
                ys = [_at(report, b, length)["latency"].get(key, {}).get("median_ms", float("nan")) for b in batches]
                axis.plot(batches, ys, style, color=colors[runtime], marker=".", label=f"{model} {runtime}")
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xticks(batches, [str(b) for b in batches])
        axis.set_title(f"{length} input tokens", fontsize=9)
        axis.set_xlabel("batch size")
    axes[0][0].set_ylabel("median latency (ms)")
    axes[0][-1].legend(fontsize=6, loc="upper left")
    figure.suptitle(f"Latency per runtime: Skeleton solid, {_teacher(report)} dashed", fontsize=10)
    figure.tight_layout()
    figure.savefig(folder / PLOT_LATENCY, dpi=110)
    plt.close(figure)
