"""One model served by two versions of the code at once, serve_load.py's load sent to each in turn: which
batcher serves more sentences per second, and for how much of the server's CPU.

Both servers run as a user starts them (``python -m cli.main serve``, ``--runtime`` as given), each from its
own checkout, and are up together, so the machine's drift between rounds reaches both alike; the round's
order alternates (A then B, B then A). Per load: sentences/s, the server's CPU time per sentence (psutil),
p50 / p99 at ``--clients`` clients (32), errors, and the share of the batches' padded tokens that were padding
(/metrics).

    PYTHONPATH=. python benchmarks/results/serve_sst2_minilm/amx/batch_choice/ab_servers.py MODEL_DIR \
        --before CHECKOUT_A --after CHECKOUT_B --runtime openvino-int8 --rounds 6 --output ab.json
    PYTHONPATH=. python benchmarks/results/serve_sst2_minilm/amx/batch_choice/ab_servers.py --render ab.json

Writes the JSON and, beside it, a Markdown table of the rounds (``--render`` writes it again from the JSON).
"""

import argparse
import asyncio
import json
import subprocess
from pathlib import Path

import numpy as np
import psutil

from benchmarks.serve_load import _load, make_requests, metric_totals
from skeleton.core.machine import describe_cpu
from skeleton.deploy.server import ServerProcess
from skeleton.measure.bench import task_texts

DATA = Path("../shared/data/sst2/dev.tsv")


def start(model: Path, checkout: Path, runtime: str) -> ServerProcess:
    """``skeleton serve`` of ``model`` from ``checkout``'s code, once ready."""
    return ServerProcess([f"m={model.resolve()}"], ["--runtime", runtime], checkout=checkout)


def padding(server: ServerProcess) -> tuple[float, float]:
    """(padding tokens, padded tokens) the server's batches ran so far."""
    total = metric_totals(server.url)
    return total["skeleton_padding_tokens_total"], total["skeleton_batch_tokens_sum"]


def one_load(server: ServerProcess, requests: list[list], clients: int) -> dict:
    served = psutil.Process(server.process.pid)
    cpu, (pad, padded) = sum(served.cpu_times()[:2]), padding(server)
    result = asyncio.run(_load(lambda i: f"{server.url}/v1/models/m/predict", requests, clients))
    pad_after, padded_after = padding(server)
    return {
        "sentences_per_second": result["sentences_per_second"],
        "cpu_ms_per_sentence": 1000 * (sum(served.cpu_times()[:2]) - cpu) / result["sentences"],
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
        "errors": result["errors"],
        "padding_share": (pad_after - pad) / max(padded_after - padded, 1),
    }


def commit(checkout: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True
    ).stdout.strip()


def markdown(report: dict) -> str:
    """A report's rounds as a table, then its medians."""
    lines = [
        f"# {report['runtime']}: before {report['before']}, after {report['after']}, {report['concurrency']} "
        f"client(s), {report['requests']} requests a load",
        "",
        "| round | before, sentences/s | after | after / before | server CPU ms per sentence, before / after | "
        "p50 ms | p99 ms | padding, share of tokens run | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for index, rounds in enumerate(report["rounds"], 1):
        b, a = rounds["before"], rounds["after"]
        lines.append(
            f"| {index} | {b['sentences_per_second']:,.0f} | {a['sentences_per_second']:,.0f} | "
            f"{a['sentences_per_second'] / b['sentences_per_second']:.2f} | "
            f"{b['cpu_ms_per_sentence']:.2f} / {a['cpu_ms_per_sentence']:.2f} | "
            f"{b['p50_ms']:.1f} / {a['p50_ms']:.1f} | "
            f"{b['p99_ms']:.1f} / {a['p99_ms']:.1f} | {b['padding_share']:.0%} / {a['padding_share']:.0%} | "
            f"{b['errors'] + a['errors']:.0f} |"
        )
    gain, cpu = report["after_vs_before_sentences_per_second"], report["before_vs_after_cpu_per_sentence"]
    lines += [
        "",
        f"After / before, sentences/s: {gain['median']:.2f}x ({gain['min']:.2f}x to {gain['max']:.2f}x); server CPU "
        f"per sentence, before / after: {cpu['median']:.2f}x ({cpu['min']:.2f}x to {cpu['max']:.2f}x). CPU: "
        f"{report['machine']['cpu']}, {', '.join(report['machine']['cpu_flags'])}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, nargs="?")
    parser.add_argument("--render", type=Path, nargs="+", help="reports to write as Markdown beside them, alone")
    parser.add_argument("--before", type=Path)
    parser.add_argument("--after", type=Path)
    parser.add_argument("--runtime", default="openvino-int8")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if args.render:
        for path in args.render:
            path.with_suffix(".md").write_text(markdown(json.loads(path.read_text())))
        return
    if not (args.model and args.before and args.after and args.output):
        parser.error("MODEL, --before, --after and --output are needed to measure (or --render reports)")
    requests = make_requests(task_texts(DATA, args.model), args.requests, 0)
    servers = {
        "before": start(args.model, args.before, args.runtime),
        "after": start(args.model, args.after, args.runtime),
    }
    rounds = []
    try:
        for index in range(args.rounds):
            order = ("before", "after") if index % 2 == 0 else ("after", "before")
            rounds.append({name: one_load(servers[name], requests, args.clients) for name in order})
            print(index, {n: round(r["sentences_per_second"]) for n, r in rounds[-1].items()}, flush=True)
    finally:
        for server in servers.values():
            server.stop()
    gains = [r["after"]["sentences_per_second"] / r["before"]["sentences_per_second"] for r in rounds]
    cpu = [r["before"]["cpu_ms_per_sentence"] / r["after"]["cpu_ms_per_sentence"] for r in rounds]
    report = {
        "model": str(args.model),
        "runtime": args.runtime,
        "requests": args.requests,
        "concurrency": args.clients,
        "before": commit(args.before),
        "after": commit(args.after),
        "rounds": rounds,
        "after_vs_before_sentences_per_second": {
            "median": float(np.median(gains)),
            "min": min(gains),
            "max": max(gains),
        },
        "before_vs_after_cpu_per_sentence": {"median": float(np.median(cpu)), "min": min(cpu), "max": max(cpu)},
        "median": {
            name: {key: float(np.median([r[name][key] for r in rounds])) for key in rounds[0][name]}
            for name in ("before", "after")
        },
        "machine": describe_cpu(),
    }
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    args.output.with_suffix(".md").write_text(markdown(report))
    print(
        json.dumps(
            {
                k: report[k]
                for k in ("after_vs_before_sentences_per_second", "before_vs_after_cpu_per_sentence", "median")
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
