"""Render the results sections of the README and docs/ from the committed reports of the default runs.

    python benchmarks/readme_results.py            # rewrite the sections between the files' markers
    python benchmarks/readme_results.py --check    # exit 1 when a file differs from the reports

The README holds one short table of every default run (``render_summary``); ``docs/results.md`` each run
in full and ``docs/serving.md`` the load benchmark.

Each section is made from two files in ``benchmarks/results/default_<task>/``: ``report.json``, what
``skeleton compress --task <task> --data-dir ../shared/data/<task>`` wrote, and ``bench.json``, what
``skeleton bench`` wrote for that model (SST-2, and MRPC, the pair task, with the linear probes of
``benchmarks/probes_pair_task.py`` beside it). Nothing in them is typed by hand, so they cannot drift
from the reports; ``tests/test_readme.py`` holds the README to this rendering.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.serve_load import load_errors as serve_load_errors
from skeleton.core.reports import teacher_name, trial_judgement
from skeleton.method.planning import best_calibrated, calibration_accuracy

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
RESULTS = RESULTS_DIR / "default_sst2"
README = ROOT / "README.md"
RESULTS_DOC = ROOT / "docs" / "results.md"
SERVING_DOC = ROOT / "docs" / "serving.md"
SUMMARY_START = "<!-- summary: rendered by python benchmarks/readme_results.py from benchmarks/results/default_* -->"
SUMMARY_END = "<!-- end of summary -->"
# the default runs, in the README's order: SST-2 on each kind of CPU it was run on (the plan depends on the CPU)
SUMMARY_RUNS = ("default_sst2", "default_sst2_amx", "default_mrpc", "default_mrpc_amx", "default_news")
SERVING = RESULTS_DIR / "serve_sst2_minilm"
SERVING_REPORTS = "serve_load_*_buckets.json"  # one per runtime, from benchmarks/serve_load.py
SERVE_START = "<!-- serving results: rendered by python benchmarks/readme_results.py from " + (
    "benchmarks/results/serve_sst2_minilm -->"
)
SERVE_END = "<!-- end of serving results -->"
SERVING_AMX = SERVING / "amx"  # the same load on the AMX Xeon's default SST-2 model
SERVE_AMX_START = "<!-- amx serving results: rendered by python benchmarks/readme_results.py from " + (
    "benchmarks/results/serve_sst2_minilm/amx -->"
)
SERVE_AMX_END = "<!-- end of amx serving results -->"
START = "<!-- results: rendered by python benchmarks/readme_results.py from benchmarks/results/default_sst2 -->"
END = "<!-- end of results -->"
AMX_START = (
    "<!-- amx results: rendered by python benchmarks/readme_results.py from benchmarks/results/default_sst2_amx -->"
)
AMX_END = "<!-- end of amx results -->"
PAIR_START = (
    "<!-- pair results: rendered by python benchmarks/readme_results.py from benchmarks/results/default_mrpc -->"
)
PAIR_END = "<!-- end of pair results -->"
PAIR_AMX_START = "<!-- amx pair results: rendered by python benchmarks/readme_results.py from " + (
    "benchmarks/results/default_mrpc_amx -->"
)
PAIR_AMX_END = "<!-- end of amx pair results -->"
USER_START = (
    "<!-- user data results: rendered by python benchmarks/readme_results.py from benchmarks/results/default_news -->"
)
USER_END = "<!-- end of user data results -->"
SWEEPS_DIR = ROOT / "benchmarks" / "sweeps"  # one-off probes and sweeps behind a default
PROBES = SWEEPS_DIR / "probes_mrpc_minilm.json"
CROSS_ENCODED = SWEEPS_DIR / "mrpc_cross_encoded_tune" / "report.json"  # skeleton tune --task mrpc --head cls
HEADS_COMPARED = SWEEPS_DIR / "mrpc_cross_encoded_tune" / "heads_compared.json"  # benchmarks/compare_pair_heads.py
METRIC_NAMES = {"f1": "F1", "macro_f1": "macro-F1"}
# what one row of a task's splits is called, and what its test split is
ROWS = {"sst2": ("sentences", "the GLUE dev split"), "mrpc": ("pairs", "the MRPC test split")}


def interval_words(ci: dict) -> str:
    """A paired bootstrap interval in points, with only the claim it supports."""
    text = f"{ci['difference']:+.2f} ({ci['low']:+.2f} to {ci['high']:+.2f})"
    if ci["low"] > 0:
        return f"{text}, higher"
    if ci["high"] < 0:
        return f"{text}, lower"
    return f"{text}, no difference shown"


def _metrics(metrics: dict) -> str:
    text = f"{metrics['accuracy']:.2f}" + (f" / F1 {metrics['f1']:.2f}" if "f1" in metrics else "")
    return text + (f" / macro-F1 {metrics['macro_f1']:.2f}" if "macro_f1" in metrics else "")


def command(report: dict) -> str:
    """The command that made the report: a built-in task from ../shared/data, or a user's file."""
    data = report["config"]["data"]
    if not data.get("data_file"):
        return f"skeleton compress --task {data['task']} --data-dir ../shared/data/{data['task']}"
    pair = f" --pair-column {data['pair_column']}" if data.get("pair_column") else ""
    texts = "".join(f" --text-column {name}" for name in data["text_columns"])
    return f"skeleton compress --data {data['data_file']}{texts}{pair} --label-column {data['label_column']}"


def _user_splits(data: dict) -> str:
    """A user's file: each split's rows and classes, held out stratified."""
    words, classes = data["mean_words"], data["class_rows"]

    def counts(split: str) -> str:
        return ", ".join(f"{name} {count}" for name, count in classes[split].items())

    return (
        f"Training: {data['train']} rows (mean {words['train']:.1f} words; {counts('train')}); validation: "
        f"{data['validation']} {data['validation_source']} ({counts('validation')}); test: {data['test']} rows held "
        f"out of the file the same way ({counts('test')}), reported only; the rows of each split are in the "
        f"report (`data.rows`)."
    )


def _splits(data: dict) -> str:
    if "rows" in data:
        return _user_splits(data)
    words = data["mean_words"]
    rows, test = ROWS[data["task"]]
    return (
        f"Training: {data['train']} rows (mean {words['train']:.1f} words); validation: {data['validation']} "
        f"{data['validation_source']} (mean {words['validation']:.1f} words), with the "
        f"{data.get('dropped_from_train', 0)} training rows they contain left out of training; test: the "
        f"{data['test']} {rows} of {test} (mean {words['test']:.1f} words), reported only."
    )


def accuracy_table(report: dict) -> list[str]:
    """Majority class, prompt-tuned and Skeleton model on both splits, with the paired intervals."""
    params, data = report["parameters"], report["data"]
    rows_name = ROWS.get(data["task"], ("rows",))[0]
    kept = sum(report["kept_sizes"] or [])
    total = round(kept / report["kept_fraction"]) if kept else None
    rows = [
        ("majority class", report["majority_class"], "", ""),
        (
            teacher_name(report["config"]),
            report["prompt_tuned"],
            f"100% ({total})",
            f"{params['backbone_before'] / 1e6:.2f}M",
        ),
        (
            "Skeleton",
            report["skeleton"],
            f"{100 * report['kept_fraction']:.1f}% ({kept})",
            f"{params['backbone_after'] / 1e6:.2f}M",
        ),
    ]
    lines = [
        f"| | validation ({data['validation']} {rows_name}) | test ({data['test']}, reported only) "
        "| FFN neurons kept | backbone parameters |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {name} | {_metrics(m['validation'])} | {_metrics(m['test'])} | {k} | {p} |" for name, m, k, p in rows]
    differences = report["accuracy_difference"]
    lines.append(
        f"| Skeleton minus {teacher_name(report['config'])}, points (95% paired bootstrap interval) "
        f"| {interval_words(differences['validation'])} | {interval_words(differences['test'])} | | |"
    )
    for metric, by_split in report.get("metric_difference", {}).items():
        lines.append(
            f"| the same in {METRIC_NAMES.get(metric, metric)} "
            f"| {interval_words(by_split['validation'])} | {interval_words(by_split['test'])} | | |"
        )
    return lines


def _trial(trial: dict) -> str:
    text = _trial_accuracy(trial)
    details = trial["details"]
    if "measured_speedup" not in details:
        return text
    shape = details["slowest_shape"]
    measured = details["measured_speedup"][shape]
    predicted = details["predicted_speedup"][shape]
    return f"{text[:-1]}; {measured:.2f}x measured at {shape}, {predicted:.2f}x predicted)"


def _condensed_in_full(search: dict) -> str:
    """Step 4's full condensations with their validation accuracy (reports since 2026-12-04 record them)."""
    done = search.get("condensed_in_full") or {}
    if not done:
        return ""
    return " Condensed in full in step 4: " + ", ".join(f"{value} to {acc:.2f}" for value, acc in done.items()) + "."


def _trial_accuracy(trial: dict) -> str:
    judged = trial_judgement(trial["details"])
    verdict = "accepted" if trial["accepted"] else "rejected"
    accuracy, head = trial["validation_accuracy"], f"{trial['value']:.2f} {verdict}"
    if judged.how == "predicted":
        teacher, left = judged.teacher, judged.left
        how = f"predicted {accuracy:.2f} = {teacher:.2f} - {left:.3f} x ({teacher:.2f} - short {judged.short:.2f})"
        source = "" if judged.pairs == 1 else f", from {judged.pairs} plans condensed both ways"
        return f"{head} ({how}{source})"
    if judged.how == "gain":
        return f"{head} (predicted {accuracy:.2f} = short {judged.short:.2f} + gain {judged.gain:.2f})"
    if judged.how == "full":
        return f"{head} ({accuracy:.2f} condensed in full, {judged.short:.2f} short)"
    if judged.how == "majority":
        return f"{head} ({accuracy:.2f} short, the majority class)"
    if judged.how == "short":
        return f"{head} ({accuracy:.2f} short, over the threshold)"
    return f"{head} ({accuracy:.2f})"


def _removed(report: dict) -> str:
    """What the Skeleton model kept: FFN widths, and heads, layers and prompt tokens where they went too."""
    kept = report["kept_sizes"] or []
    full = round(sum(kept) / report["kept_fraction"] / len(kept)) if kept else None
    text = f"FFN widths kept per layer: {', '.join(map(str, kept))} of {full}."
    if report.get("kept_layers") is not None:
        layers = report["kept_layers"]
        text += f" Layers kept: {len(layers)} of {len(kept)} (numbered from 0: {', '.join(map(str, layers))})."
    if report.get("kept_heads") is not None:
        text += f" Attention heads kept per layer: {', '.join(map(str, report['kept_heads']))}."
    tokens = report["prompt_tokens"]
    if not tokens["prompt_tuned"]:
        return text + " No soft prompt."
    return text + f" Soft prompt: {tokens['skeleton']} tokens (the prompt-tuned model's: {tokens['prompt_tuned']})."


def _full_rows(report: dict) -> str:
    """What a full condensation trained on, where it was more than one pass over the training rows."""
    train = report["data"]["train"]
    rows = report["data"].get("condensation_rows") or train  # reports before it: the training rows
    epochs = report["config"]["condense"].get("epochs", 1)
    if rows == train and epochs == 1:
        return ""
    more = f", the {train} training rows and {rows - train} more that --train-samples left out" if rows > train else ""
    return f"; in full, {epochs:g} epochs of {rows} rows{more}, labelled by the {teacher_name(report['config'])} model"


def search_lines(report: dict) -> list[str]:
    """The search's trials, what was removed, how it was condensed and where the time went."""
    search = report["search"]
    kind = search.get("kind", "kept ratio")
    trials = ", ".join(_trial(t) for t in search["trials"])
    timings = report["timings_seconds"]
    stages = ", ".join(
        f"{name.replace('_', ' ')} {seconds / 60:.1f}" for name, seconds in timings.items() if name != "total"
    )
    condense, name = report["config"]["condense"], teacher_name(report["config"])
    trained = (
        "the prompt, head and slim layers"
        if (report.get("prompt_tokens") or {}).get("skeleton")
        else "the head and slim layers"
    )
    how = {"prompt": "the prompt and head re-tuned on the frozen pruned backbone"}.get(
        condense.get("trains", "prompt"),
        f"{condense.get('trains')}: {trained} trained, distilled from the {name} model "
        f"(weight {condense.get('distill')}, temperature {condense.get('temperature')})" + _full_rows(report),
    )
    fallback, verified = search.get("fallback_from"), search.get("verified_from")
    return [
        *_calibration_lines(report),
        f"Search over the {kind} (margin {report['config']['search']['margin']} points below the {name} "
        f"model's {report['prompt_tuned']['validation']['accuracy']:.2f}, validation accuracy after condensation): "
        f"{trials}."
        + (
            f" The chosen {fallback:.2f} missed the margin once condensed in full; "
            + (
                "the model was kept whole."
                if search["value"] >= 1.0
                else f"the search went on from what full condensations measured, and {search['value']:.2f} shipped."
                if search.get("searched_again")
                else f"{search['value']:.2f} shipped."
            )
            if fallback
            else ""
        )
        + (
            f" The search chose {verified:.2f}; its faster neighbour {search['value']:.2f}, rejected by the"
            f" prediction, was condensed in full, stayed within the margin and shipped."
            if verified
            else ""
        )
        + _condensed_in_full(search)
        + f" {_removed(report)} Condensation: {how}.",
        "",
        f"Wall time {timings['total'] / 60:.1f} min ({stages} min) on {report['device']}.",
    ]


def _calibration_lines(report: dict) -> list[str]:
    """How heads and whole layers were weighed against neurons before the search, when they were."""
    calibration = report.get("head_weight_calibration")
    if not calibration:
        return []
    rows = calibration["weights"]
    best = best_calibrated(rows)
    judged_rows = [row for row in rows if calibration_accuracy(row) is not None]
    which = "candidates" if len(judged_rows) == len(rows) else "finalists"
    weight = "heads kept" if best["head_weight"] is None else f"head weight {best['head_weight']:g}"
    layers = "whole layers removable" if best.get("prune_layers") else "every layer kept"
    judged = calibration.get("judged_by", "plain accuracy before condensation")
    return [
        f"Heads and layers against neurons: {len(rows)} candidate plans at latency fraction "
        f"{calibration['fraction']:.2f}, judged on validation by their {judged}; chosen: {weight}, {layers} "
        f"({calibration_accuracy(best):.2f}; the {which} ranged "
        f"{min(map(calibration_accuracy, judged_rows)):.2f}-{max(map(calibration_accuracy, judged_rows)):.2f}).",
        "",
    ]


def export_table(report: dict) -> list[str]:
    """The exported graphs: size, accuracy, agreement with fp32, latency; the shipped one in bold."""
    export = report["export"]
    shapes = sorted({s for v in export["variants"].values() for s in v.get("latency_ms", {})})
    lines = [
        "| graph (runtime) | MB | validation | test | agrees with fp32 | "
        + " | ".join(f"{s} ms" for s in shapes)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(shapes),
    ]
    for name, info in export["variants"].items():
        runtime = info.get("runtime") or f"onnx-{name}"
        label = f"**{runtime} (default)**" if name == export["default_variant"] else runtime
        method = f": {info['method']['name']}" if "method" in info else ""
        latency = " | ".join(f"{info['latency_ms'][s]:.1f}" for s in shapes)
        lines.append(
            f"| {label}{method} | {info['bytes'] / 1e6:.1f} | {info['validation_accuracy']:.2f} "
            f"| {info['test_accuracy']:.2f} | {100 * info['argmax_agreement_fp32']:.1f}% | {latency} |"
        )
    for name, why in export.get("rejected_variants", {}).items():
        lines += ["", f"Not shipped: {name}, {why['reason']}."]
    return lines


def prediction_table(report: dict, bench: dict) -> list[str]:
    """Per batch x input tokens: the shipped plan's speed-up as the search predicted it, as the search
    measured it (its pruned model against the teacher, on the table's runtime) and as bench measured the
    shipped model (fastest against fastest, every runtime); empty for a run that timed no plan."""
    costs = report.get("cost_model") or {}
    measured = costs.get("measured_speedup")
    if not measured:
        return []
    points = {f"{p['batch']}x{p['length']}": p["headline"] for p in bench["points"] if p["headline"]}
    lengths = sorted({int(k.split("x")[1]) for k in measured})
    lines = [
        f"The search's prediction beside measurement (runtime {costs['table']['key'].get('runtime')}; predicted / "
        "measured in the search / `skeleton bench`, and the prediction's error against bench):",
        "",
        "| batch \\ input tokens | " + " | ".join(map(str, lengths)) + " |",
        "|---" * (len(lengths) + 1) + "|",
    ]
    for batch in sorted({int(k.split("x")[0]) for k in measured}):
        cells = []
        for length in lengths:
            key = f"{batch}x{length}"
            predicted = costs["predicted_speedup"][key]
            bench_text = f"{points[key]['speedup']:.2f}x" if key in points else "-"
            error = f" ({100 * (predicted / points[key]['speedup'] - 1):+.0f}%)" if key in points else ""
            cells.append(f"{predicted:.2f}x / {measured[key]:.2f}x / {bench_text}{error}")
        lines.append(f"| {batch} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _ms(timing: dict) -> str:
    return f"{timing['median_ms']:.1f} ({timing['p10_ms']:.1f}-{timing['p90_ms']:.1f})"


def bench_table(bench: dict, name: str = "prompt-tuned") -> list[str]:
    """Speed-up of the Skeleton model's fastest shippable runtime over the prompt-tuned model's
    fastest runtime of all, batch x input tokens: the ratio of medians, then each side's median
    with its p10-p90 spread (the runtimes named where they are not the same everywhere)."""
    heads = [p["headline"] for p in bench["points"] if p["headline"]]
    pairs = {(h["skeleton_runtime"], h["prompt_tuned_runtime"]) for h in heads}
    lengths = sorted({p["length"] for p in bench["points"]})
    lines = ["| batch \\ input tokens | " + " | ".join(map(str, lengths)) + " |", "|---" * (len(lengths) + 1) + "|"]
    for batch in sorted({p["batch"] for p in bench["points"]}):
        cells = []
        for length in lengths:
            point = next(p for p in bench["points"] if p["batch"] == batch and p["length"] == length)
            head = point["headline"]
            slim = point["latency"][f"skeleton/{head['skeleton_runtime']}"]
            base = point["latency"][f"prompt_tuned/{head['prompt_tuned_runtime']}"]
            names = "" if len(pairs) == 1 else f" {head['skeleton_runtime']} vs {head['prompt_tuned_runtime']}"
            cells.append(f"**{head['speedup']:.2f}x**: {_ms(slim)} vs {_ms(base)} ms{names}")
        lines.append(f"| {batch} | " + " | ".join(cells) + " |")
    if len(pairs) == 1:
        ((slim_runtime, base_runtime),) = pairs
        lines += ["", f"At every point the fastest were {slim_runtime} (Skeleton) and {base_runtime} ({name})."]
    return lines


def end_to_end_line(bench: dict, data: dict) -> list[str]:
    """The same headline on real sentences (or pairs) of the data file, tokenizer and template included."""
    rows = [r for r in bench.get("end_to_end", []) if r["headline"]]
    if not rows:
        return []
    speedups = ", ".join(f"{r['headline']['speedup']:.2f}x at batch {r['batch']}" for r in rows)
    if "rows" in data:  # a user's file: bench read the held-out test rows (data.rows), written out as a file
        what = f"rows (the {data['test']} held-out test rows of the file)"
    else:
        what = f"{ROWS[bench['task']][0]} of `{bench['config']['data']}`"
    return ["", f"Real {what} end to end (tokenizer and template included): {speedups}."]


TUNED_HEADS = SWEEPS_DIR / "mrpc_tuned_heads"  # benchmarks/compare_pair_heads.py on skeleton tune --task mrpc runs


def tuned_head_lines(report: dict) -> list[str]:
    """A pair task whose backbone was fine-tuned: its head and learning rate, each chosen on validation."""
    heads = json.loads((TUNED_HEADS / "heads_compared.json").read_text())
    rates = json.loads((TUNED_HEADS / "lr_compared.json").read_text())
    head = report.get("head") or report["config"]["model"]["head"]
    cross, bi = (_metrics(heads[side]["validation"]) for side in ("a", "b"))
    return [
        f"Head: `{head}`, the pair read as one sequence. Chosen on validation with the backbone fine-tuned "
        f"(`skeleton tune --task mrpc --head cls` and `--head bi-encoder`, 345 steps at lr 5e-5; "
        f"`{(TUNED_HEADS / 'heads_compared.json').relative_to(ROOT)}`): cross-encoded "
        f"{cross} against the bi-encoder's {bi} on validation, cross-encoded minus bi-encoder "
        f"{interval_words(heads['a_minus_b']['validation'])} (test, reported only: "
        f"{interval_words(heads['a_minus_b']['test'])}); then lr 1e-4 against 5e-5 "
        f"(`{(TUNED_HEADS / 'lr_compared.json').relative_to(ROOT)}`): validation "
        f"{interval_words(rates['a_minus_b']['validation'])} (test {interval_words(rates['a_minus_b']['test'])})."
    ]


def probe_lines(report: dict, probes: dict, cross: dict, compared: dict) -> list[str]:
    """A pair task's head; beside it, the cross-encoded pair prompt-tuned with the same recipe (the
    difference with its interval), and the linear probes on the frozen model."""
    head = report.get("head") or report["config"]["model"]["head"]  # the resolved head where the report has it
    code = cross["versions"].get("skeleton_commit", "?")
    difference = compared["a_minus_b"]
    line = (
        f"Head: `{head}`. The cross-encoded pair, prompt-tuned with the same recipe (`skeleton tune --task mrpc "
        f"--head cls`, code {code}, `{CROSS_ENCODED.relative_to(ROOT)}`): validation {_metrics(cross['validation'])}, "
        f"test {_metrics(cross['test'])}; the prompt-tuned {compared['a']['head']} minus it, points (95% paired "
        f"bootstrap interval, `{HEADS_COMPARED.relative_to(ROOT)}`): validation "
        f"{interval_words(difference['validation'])}; test {interval_words(difference['test'])}. "
        "Logistic-regression probes on the frozen model's mean-pooled "
        f"features (`{PROBES.relative_to(ROOT)}`, C chosen on validation):"
    )
    for name, words in (("cross_encoded", "the templated pair as one sequence"), ("bi_encoded", "each sentence alone")):
        probe = probes[name]
        line += f" {words}, validation {_metrics(probe['validation'])}, test {_metrics(probe['test'])};"
    return [line[:-1] + "."]


def _markers(folder: Path) -> tuple[str, str]:
    """The start and end markers of the section rendered from ``folder``."""
    return next((start, end) for _, start, end, where, _ in SECTIONS if where == folder)


def render(results: Path = RESULTS) -> str:
    """A task's results section, markers included."""
    report = json.loads((results / "report.json").read_text())
    bench = json.loads((results / "bench.json").read_text())
    task = report["data"]["task"]
    start, end = _markers(results)
    machine = bench["machine"]
    speedups = [p["headline"]["speedup"] for p in bench["points"] if p["headline"]]
    runtimes = sorted({c["runtime"] for c in bench["contenders"]})
    code = report["versions"].get("skeleton_commit", report["versions"].get("skeleton", "?"))
    folder = results.relative_to(ROOT)
    probes = []
    if task == "mrpc" and report["config"]["tune"]["trains"] != "prompt":
        probes = tuned_head_lines(report)
    elif task == "mrpc":
        files = (PROBES, CROSS_ENCODED, HEADS_COMPARED)
        probes = probe_lines(report, *(json.loads(path.read_text()) for path in files))
    lines = [
        start,
        "",
        f"`{command(report)}` with every default of code {code} "
        f"(step 1: the {teacher_name(report['config'])} model; seed {report['seed']}), on {machine['cpu']} with "
        f"{machine['cores']} cores "
        f"({', '.join(machine['cpu_flags'])}). {_splits(report['data'])} "
        f"Report: `{folder}/report.json`.",
        "",
        *accuracy_table(report),
        "",
        *probes,
        *([""] if probes else []),
        *search_lines(report),
        "",
        f"The export (judged on the {report['export']['judged_on']}; latency: medians of alternated calls in one "
        "process on random ids, batch x input tokens; every int8 or bf16 graph must pass the same bar against fp32, "
        "and the fastest graph that passes, over every runtime, is the default that predict and serve use):",
        "",
        *export_table(report),
        "",
        f"`skeleton bench` on that model (`{folder}/bench.json`, code "
        f"{bench['versions'].get('skeleton_commit', '?')}): speed-up of the Skeleton "
        f"model's fastest shippable runtime over the {teacher_name(report['config'])} model's fastest runtime of all, "
        "each the median "
        f"of up to {bench['config']['repeats']} rounds of calls alternated in one process (runtimes timed: "
        f"{', '.join(runtimes)}"
        + (
            "; a batch is that many pairs, each sentence that many tokens"
            if bench["shapes"]["skeleton"].get("head_kind") == "bi-encoder"
            else ""
        )
        + "):",
        "",
        *bench_table(bench, teacher_name(report["config"])),
        *end_to_end_line(bench, report["data"]),
        "",
        *prediction_table(report, bench),
        f"Headline over the grid: {min(speedups):.2f}x to {max(speedups):.2f}x.",
        "",
        end,
    ]
    return "\n".join(lines) + "\n"


def _figure(report: dict, key: str, digits: int = 0) -> str:
    """The median of ``key`` over the rounds of a serve_load report, min to max beside it."""
    median, low, high = report["median"][key]
    return f"{median:,.{digits}f} ({low:,.{digits}f}-{high:,.{digits}f})"


def _served_model(report: dict) -> str:
    """Which code compressed the served model and which served it (reports before 2026-12-04 name the latter)."""
    served = f"code {report.get('code') or '?'}"
    return f"compressed by code {report['model_code']}, served by {served}" if report.get("model_code") else served


def render_serving(folder: Path = SERVING) -> str:
    """The serving section from ``benchmarks/serve_load.py``'s reports in ``folder`` (one per runtime)."""
    start_marker, end_marker = _markers(folder)
    reports = [json.loads(path.read_text()) for path in sorted(folder.glob(SERVING_REPORTS))]
    first = reports[0]
    machine = first["machine"]
    rows = [
        "| runtime | raw graph, batch 1 | raw graph, best batch | its first pass | server | server p50 / p99 ms | "
        "server, `--max-batch-size 1` | server / raw best | server / batch-1 server | CPU ms per sentence: "
        "server / load generator | first tenth: fresh / warm server | ready after | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for report in reports:
        errors = serve_load_errors(report)
        start = (
            _figure(report, "server_fresh_vs_warm_first_tenth", 2)
            if "server_fresh_vs_warm_first_tenth" in report["median"]
            else "not measured"
        )
        rows.append(
            f"| {report['runtime']} | {_figure(report, 'raw_batch_1')} | {_figure(report, 'raw_best')} | "
            f"{_figure(report, 'raw_cold_best')} | {_figure(report, 'server_sentences_per_second')} | "
            f"{_figure(report, 'server_p50_ms')} / {_figure(report, 'server_p99_ms')} | "
            f"{_figure(report, 'server_batch_1_sentences_per_second')} | {_figure(report, 'server_vs_raw_best', 2)} | "
            f"{_figure(report, 'server_vs_batch_1', 2)} | {_figure(report, 'server_cpu_ms_per_sentence', 2)} / "
            f"{_figure(report, 'server_load_generator_cpu_ms_per_sentence', 2)} | {start} | "
            f"{_figure(report, 'server_seconds_to_ready', 1)} s | {errors} |"
        )
    lines = [
        start_marker,
        "",
        f"`python benchmarks/serve_load.py DIR --data ../shared/data/sst2/dev.tsv --runs server,server_batch_1 "
        f"--rounds {len(first['rounds'])} --requests {first['requests']} --runtime R` on the default SST-2 model "
        f"({_served_model(first)}), on {machine['cpu']} with {machine['cores']} cores "
        f"({', '.join(machine['cpu_flags'])}): {first['requests']} requests of 1 to 8 sentences from "
        f"{first['concurrency']} clients on loopback, the load generator on the same cores. Sentences per second, "
        "tokenizer included; medians of the rounds with min-max. The raw graph is `Predictor` called in a loop "
        "(warmed: the best of two passes after a first, the first also shown), one batch at a time and, where the "
        "runtime has streams (OpenVINO), as many at once, the best of either; the server's time to ready counts "
        "from the command's start; the first tenth of the answers of a fresh server is held against the first tenth "
        "of the same load sent again to the server once warm (any load starts slower: its 32 clients start in step)"
        f". Errors count both loads. Reports: `{folder.relative_to(ROOT)}/{SERVING_REPORTS}`.",
        "",
        *rows,
        "",
        end_marker,
    ]
    return "\n".join(lines) + "\n"


def _removed_short(report: dict) -> str:
    """What the Skeleton model removed, in a few words: layers, heads, FFN neurons."""
    parts = []
    layers = report.get("kept_layers")
    total_layers = len(report["kept_sizes"] or [])
    if layers is not None and total_layers:
        parts.append(f"{total_layers - len(layers)} of {total_layers} layers")
    heads = report.get("kept_heads")
    per_layer = ((report.get("cost_model") or {}).get("table") or {}).get("key", {}).get("num_heads")
    if heads and per_layer and total_layers:
        parts.append(f"{per_layer * total_layers - sum(heads)} of {per_layer * total_layers} heads")
    parts.append(f"{100 * report['removed_fraction']:.1f}% of FFN neurons")
    return ", ".join(parts)


def _summary_row(folder: Path) -> tuple[str, dict]:
    report = json.loads((folder / "report.json").read_text())
    bench = json.loads((folder / "bench.json").read_text())
    speedups = [p["headline"]["speedup"] for p in bench["points"] if p["headline"]]
    name = (
        report["data"]["task"]
        if not report["config"]["data"].get("data_file")
        else Path(report["config"]["data"]["data_file"]).name
    )
    teacher, skeleton = report["prompt_tuned"], report["skeleton"]
    minutes = report["timings_seconds"].get("total", 0.0) / 60
    row = (
        f"| {name} | {teacher_name(report['config'])}: {teacher['validation']['accuracy']:.2f} / "
        f"{teacher['test']['accuracy']:.2f} | {skeleton['validation']['accuracy']:.2f} / "
        f"{skeleton['test']['accuracy']:.2f} | {interval_words(report['accuracy_difference']['test'])} | "
        f"{_removed_short(report)} | {min(speedups):.2f}x to {max(speedups):.2f}x | {minutes:.1f} min | "
        f"{cpu_words(bench['machine'])}, {report['versions']['skeleton_commit'][:7]} |"
    )
    return row, bench["machine"]


def cpu_words(machine: dict) -> str:
    """A CPU's vector instructions in a few words: what decides which runtime and plan are fastest."""
    flags = set(machine["cpu_flags"])
    extensions = [
        name for flag, name in (("amx_bf16", "AMX"), ("avx512f", "AVX-512"), ("avx512_vnni", "VNNI")) if flag in flags
    ]
    extensions += ["bf16"] if "avx512_bf16" in flags else []
    return ", ".join(extensions) if extensions else "AVX2 only" if "avx2" in flags else "no AVX2"


def render_summary(folders: tuple[Path, ...]) -> str:
    """The README's table: each default run's teacher and Skeleton accuracy, what went, bench's range."""
    rows, machines = zip(*(_summary_row(folder) for folder in folders), strict=True)
    where = sorted({f"{m['cpu']} with {m['cores']} cores" for m in machines})
    lines = [
        SUMMARY_START,
        "",
        f"Each default run, seed 42, on {' or '.join(where)}; its row names the CPU's vector instructions and the "
        "code version it ran. Accuracy in %, validation / test (test only reported); the speed-up is `skeleton "
        "bench`'s, the Skeleton model's fastest runtime against the teacher's fastest of all, over batch {1, 8, 32} "
        "x input tokens {16, 64, 128}. Every figure, with each CPU's flags, and the runs before: "
        "[docs/results.md](docs/results.md).",
        "",
        "| data | teacher | Skeleton | Skeleton minus teacher, test (95% interval) | removed | speed-up | compress "
        "| CPU, code |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        SUMMARY_END,
    ]
    return "\n".join(lines) + "\n"


# (file, start marker, end marker, what it is rendered from, renderer)
SECTIONS = (
    (README, SUMMARY_START, SUMMARY_END, tuple(RESULTS_DIR / run for run in SUMMARY_RUNS), render_summary),
    (RESULTS_DOC, START, END, RESULTS, render),
    (RESULTS_DOC, AMX_START, AMX_END, RESULTS_DIR / "default_sst2_amx", render),
    (RESULTS_DOC, PAIR_START, PAIR_END, RESULTS_DIR / "default_mrpc", render),
    (RESULTS_DOC, PAIR_AMX_START, PAIR_AMX_END, RESULTS_DIR / "default_mrpc_amx", render),
    (RESULTS_DOC, USER_START, USER_END, RESULTS_DIR / "default_news", render),
    (SERVING_DOC, SERVE_START, SERVE_END, SERVING, render_serving),
    (SERVING_DOC, SERVE_AMX_START, SERVE_AMX_END, SERVING_AMX, render_serving),
)


def _section(text: str, start_marker: str = START, end_marker: str = END, path: Path = README) -> tuple[int, int]:
    start, end = text.find(start_marker), text.find(end_marker)
    if start < 0 or end < start:
        raise SystemExit(f"{path} has no results markers ({start_marker!r} ... {end_marker!r})")
    return start, end + len(end_marker) + 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a file's sections differ")
    args = parser.parse_args()
    texts = {path: path.read_text() for path in {section[0] for section in SECTIONS}}
    for path, start_marker, end_marker, results, renderer in SECTIONS:
        text = texts[path]
        start, end = _section(text, start_marker, end_marker, path)
        rendered = renderer(results)
        if args.check and text[start:end] != rendered:
            print(
                f"{path.relative_to(ROOT)}'s results sections differ from the reports: run python "
                "benchmarks/readme_results.py"
            )
            return 1
        texts[path] = text[:start] + rendered + text[end:]
    if not args.check:
        for path, text in texts.items():
            path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
