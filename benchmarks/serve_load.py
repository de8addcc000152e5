"""Load test of `skeleton serve` on loopback, against the same graph called directly.

Real sentences, a fixed seeded list of requests (each 1 to 8 sentences), sent by N concurrent
clients; the server runs as its own process, started as a user starts it. Measured, one after
the other on the same machine and the same requests:
- raw: the exported graph the server runs, called directly through ``Predictor`` in a loop on all
  the requests' sentences (tokenizer included, batches padded to the same buckets), at each batch size,
  in a child process: the first pass (``cold``) and the best of two more (warmed), one batch at a time
  and, where the runtime can (OpenVINO's throughput hint, as the server opens it), as many batches at
  once as it has streams; the best warmed figure of all is the ceiling the server is held against
  (``--runtime`` picks how both run);
- the server with its defaults (with its mean batch size, and the padding's share of the tokens its batches
  ran);
- the server with --max-batch-size 1 (no batching);
- two models served at once, the requests alternating between them.

    python benchmarks/serve_load.py DIR --data ../shared/data/sst2/dev.tsv [--second DIR2 --second-data F]
    python benchmarks/serve_load.py --render serve_load_onnx.json serve_load_torch_bf16.json

Writes JSON with sentences/s, p50/p99 request latency, errors, the server's time to ready and its
rate over the first tenth of the answers against the rest (and against the first tenth of the same load sent
again once the server is warm), the CPU time the server and the load
generator spent per sentence (the raw loop's too), per round, medians with min and max;
``--render`` turns one or more of those files into serve_load.md and serve_load.png beside the first
(one row per runtime); the README's serving section is rendered from them by readme_results.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from skeleton.core.file_names import REPORT_FILE
from skeleton.core.machine import describe_cpu
from skeleton.core.outputs import source_commit
from skeleton.measure.bench import task_texts


def make_requests(texts: list, count: int, seed: int) -> list[list]:
    rng = np.random.default_rng(seed)
    return [
        [texts[i] for i in rng.choice(len(texts), size=int(rng.integers(1, 9)), replace=False)] for _ in range(count)
    ]


def raw_throughput(directory: Path, texts: list, batch_sizes: tuple[int, ...], runtime: str) -> dict[str, float]:
    """Sentences per second of the model called directly (tokenizer included), per batch size: the first
    pass over the sentences (``cold_batch_B``: new input shapes compile as they come, as a server without
    warm-up meets them) and the best of two more (``batch_B``: warmed). Where the runtime can run several
    batches at once (OpenVINO's throughput hint, as the server opens it), also that many batches from as
    many threads (``streams_batch_B``). The best warmed figure of either is the ceiling a server is held to."""
    import concurrent.futures

    from skeleton.deploy.predictor import Predictor

    result = {}
    for streams, prefix in ((1, ""), (None, "streams_")):
        predictor = Predictor(directory, runtime=runtime, max_batch=max(batch_sizes), streams=streams, use="serve")
        parallel = predictor.runtime.parallel
        if streams is None and parallel == 1:
            break  # one batch at a time either way: measured above
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=parallel)
        for batch in batch_sizes:
            chunks = [texts[i : i + batch] for i in range(0, len(texts), batch)]
            for attempt in range(3):
                started, cpu = time.perf_counter(), time.process_time()
                list(pool.map(lambda chunk: predictor.logits(chunk, batch_size=batch), chunks))  # noqa: B023
                speed = len(texts) / (time.perf_counter() - started)
                key = f"{prefix}cold_batch_{batch}" if attempt == 0 else f"{prefix}batch_{batch}"
                if speed > result.get(key, 0.0):  # CPU time of every thread of the process, per sentence
                    result[key], result[f"cpu_ms_{key}"] = speed, 1000 * (time.process_time() - cpu) / len(texts)
        pool.shutdown()
    return result


MINUTE = 60.0


async def _load(url_for, requests: list[list], concurrency: int, keep_latencies: bool = False) -> dict:
    """Send ``requests`` from ``concurrency`` clients; rates, p50 / p99, errors (and, with ``keep_latencies``,
    each request's latency in ms, in the order of ``requests``)."""
    import aiohttp

    latencies = np.zeros(len(requests))
    finished = np.zeros(len(requests))  # when each request was answered (perf_counter)
    statuses = [0] * len(requests)
    cursor = iter(range(len(requests)))

    async def client(session):
        for index in cursor:
            body = json.dumps({"inputs": requests[index]}).encode()
            started = time.perf_counter()
            try:
                async with session.post(
                    url_for(index), data=body, headers={"content-type": "application/json"}
                ) as response:
                    await response.read()
                    statuses[index] = response.status
            except aiohttp.ClientError:
                statuses[index] = -1
            latencies[index] = time.perf_counter() - started
            finished[index] = time.perf_counter()

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    count = sum(len(r) for r in requests)
    errors = sum(s != 200 for s in statuses)
    kept = {"latencies_ms": (latencies * 1000).tolist()} if keep_latencies else {}
    return {
        **_start_against_rest(requests, finished),
        **kept,
        "requests": len(requests),
        "sentences": count,
        "seconds": wall,
        "sentences_per_second": count / wall,
        "p50_ms": float(np.percentile(latencies, 50) * 1000),
        "p99_ms": float(np.percentile(latencies, 99) * 1000),
        "errors": errors,
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
    }


def _start_against_rest(requests: list[list], finished: np.ndarray) -> dict[str, float]:
    """Sentences/s over the first tenth of the answers and over the rest, and (for a load over two minutes) over
    the first minute and after it: does a fresh server start slower than it goes on? Rates count from the first
    answer (before it, the pipeline fills, whatever the server's speed); ``finished``: when each was answered."""
    order = np.argsort(finished)
    sizes = np.array([len(r) for r in requests])[order]
    first = max(2, len(requests) // 10)
    times = finished[order]
    rates = {
        "first_tenth_sentences_per_second": float(sizes[1:first].sum() / max(times[first - 1] - times[0], 1e-9)),
        "rest_sentences_per_second": float(sizes[first:].sum() / max(times[-1] - times[first - 1], 1e-9)),
    }
    if times[-1] - times[0] > 2 * MINUTE:  # a load long enough to hold its first minute against the rest
        within = times - times[0] <= MINUTE
        rates["first_minute_sentences_per_second"] = float(sizes[1:][within[1:]].sum() / MINUTE)
        rates["after_first_minute_sentences_per_second"] = float(sizes[~within].sum() / (times[-1] - times[0] - MINUTE))
    return rates


METRICS = (
    "skeleton_batch_size_sum",
    "skeleton_batch_size_count",
    "skeleton_padding_tokens_total",
    "skeleton_batch_tokens_sum",
)


def metric_totals(url: str) -> dict[str, float]:
    """A server's :data:`METRICS` so far, each summed over its models."""
    import httpx

    lines = httpx.get(f"{url}/metrics").text.splitlines()
    return {name: sum(float(line.split()[-1]) for line in lines if line.startswith(name)) for name in METRICS}


WARM_KEYS = (
    "sentences_per_second",
    "first_tenth_sentences_per_second",
    "rest_sentences_per_second",
    "first_minute_sentences_per_second",
    "after_first_minute_sentences_per_second",
    "errors",
)


def run_server(models: dict[str, Path], options: list[str], requests: list[list], concurrency: int) -> dict:
    from skeleton.deploy.server import ServerProcess

    server = ServerProcess([f"{name}={path}" for name, path in models.items()], options)
    try:
        import httpx
        import psutil

        names = list(models)
        urls = [f"{server.url}/v1/models/{name}/predict" for name in names]
        # where the two cores went: the server's CPU time and this load generator's, per sentence answered
        served, client = psutil.Process(server.process.pid), time.process_time()
        before = sum(served.cpu_times()[:2])
        # no client-side warm-up: the load starts as soon as /ready says 200, as a user's traffic would
        result = asyncio.run(_load(lambda i: urls[i % len(urls)], requests, concurrency))
        result["cpu_ms_per_sentence"] = 1000 * (sum(served.cpu_times()[:2]) - before) / result["sentences"]
        result["load_generator_cpu_ms_per_sentence"] = 1000 * (time.process_time() - client) / result["sentences"]
        # the same load again on the server now warm: any load's first tenth is slower than its rest (32
        # clients start in step), so a fresh server's start is held against a warm server's start
        again = asyncio.run(_load(lambda i: urls[i % len(urls)], requests, concurrency))
        result["warm"] = {key: again[key] for key in WARM_KEYS if key in again}
        result["fresh_vs_warm_first_tenth"] = (
            result["first_tenth_sentences_per_second"] / again["first_tenth_sentences_per_second"]
        )
        ready = httpx.get(f"{server.url}/ready", timeout=30).json()
        result["warm_up_seconds"] = ready.get("warm_up_seconds")
        result["seconds_to_ready"] = server.seconds_to_ready

        total = metric_totals(server.url)
        result["mean_batch_size"] = total["skeleton_batch_size_sum"] / max(total["skeleton_batch_size_count"], 1)
        # of the tokens the batches ran after padding (to the longest input and the buckets), the padding's share
        result["padding_share"] = total["skeleton_padding_tokens_total"] / max(total["skeleton_batch_tokens_sum"], 1)
    finally:
        server.stop()
    result["options"] = options
    result["models"] = {name: str(path) for name, path in models.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, nargs="?")
    parser.add_argument("--render", type=Path, nargs="+", default=None, help="report JSON files to render")
    parser.add_argument("--data", type=Path, default=None, help="labelled TSV of the task: its texts are sent")
    parser.add_argument("--second", type=Path, default=None, help="a second model for the two-model run")
    parser.add_argument("--second-data", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-sizes", default="1,8,16,32")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--runs", default="server,server_batch_1,two_models", help="which server runs to make")
    parser.add_argument("--server-options", default="", help="extra options for every server, e.g. '--spinning'")
    parser.add_argument("--runtime", default="onnx", help="how the model runs, in the server and the raw loop")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every run, one after the other")
    args = parser.parse_args()
    if args.render:
        render([json.loads(path.read_text()) for path in args.render], args.render[0].parent)
        return
    if args.directory is None or args.data is None:
        parser.error("DIR and --data are needed to measure (or --render JSON ... to render reports)")
    extra = [*args.server_options.split(), "--runtime", args.runtime]
    wanted = set(args.runs.split(","))

    texts = task_texts(args.data, args.directory)
    requests = make_requests(texts, args.requests, args.seed)
    flat = [t for r in requests for t in r]
    batch_sizes = tuple(int(b) for b in args.batch_sizes.split(","))
    rounds = [one_round(args, requests, flat, batch_sizes, extra, wanted) for _ in range(args.rounds)]
    report = {
        "directory": str(args.directory),
        "data": str(args.data),
        "requests": args.requests,
        "concurrency": args.concurrency,
        "runtime": args.runtime,
        "server_options": extra,
        "rounds": rounds,
        "median": {key: _spread([r[key] for r in rounds]) for key in rounds[0] if isinstance(rounds[0][key], float)},
        "machine": {**describe_cpu(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "code": source_commit(),
        "model_code": _model_code(args.directory),
    }
    print(f"medians of {args.rounds} rounds (min to max):")
    for key, (median, low, high) in report["median"].items():
        print(f"- {key}: {median:.3f} ({low:.3f} to {high:.3f})")
    print("errors:", [{name: r[name]["errors"] for name in r if isinstance(r[name], dict)} for r in rounds])
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2))


def _model_code(directory: Path) -> str | None:
    """The code version that compressed the served model (its report's ``versions``), if it says."""
    report = directory / REPORT_FILE
    if not report.is_file():
        return None
    return json.loads(report.read_text()).get("versions", {}).get("skeleton_commit")


def _cell(report: dict, key: str, digits: int = 0, unit: str = "") -> str:
    """The median of ``key`` over the rounds, with min to max when there are several."""
    if key not in report["median"]:
        return ""
    median, low, high = report["median"][key]
    if len(report["rounds"]) == 1:
        return f"{median:,.{digits}f}{unit}"
    return f"{median:,.{digits}f}{unit} ({low:,.{digits}f} to {high:,.{digits}f})"


def load_errors(report: dict) -> int:
    """Requests not answered 200, over every load of every round (the warm repeat's too)."""
    return sum(
        r[name]["errors"] + r[name].get("warm", {}).get("errors", 0)
        for r in report["rounds"]
        for name in r
        if isinstance(r[name], dict)
    )


def markdown(reports: list[dict]) -> str:
    """One row per runtime: raw best, server, batch-1 server, two models, the ratios and errors."""
    lines = [
        "# `skeleton serve` under load",
        "",
        "Sentences per second; medians over the rounds with min to max; p50/p99 request latency in ms.",
        "",
        "| runtime | rounds | raw graph, best batch | server (defaults) | server p50 / p99 | "
        "server, `--max-batch-size 1` | two models at once | server / raw | server / batch-1 | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for report in reports:
        latency = f"{_cell(report, 'server_p50_ms')} / {_cell(report, 'server_p99_ms')}"
        cells = [
            report["runtime"],
            str(len(report["rounds"])),
            _cell(report, "raw_best"),
            _cell(report, "server_sentences_per_second"),
            latency if "server_p50_ms" in report["median"] else "",
            _cell(report, "server_batch_1_sentences_per_second"),
            _cell(report, "two_models_sentences_per_second"),
            _cell(report, "server_vs_raw_best", 2, "x"),
            _cell(report, "server_vs_batch_1", 2, "x"),
            str(load_errors(report)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    first = reports[0]
    lines += [
        "",
        f"{first['requests']} requests of 1 to 8 sentences from {first['concurrency']} concurrent clients on "
        f"loopback ({first['data']}); machine: {first['machine']['cpus']} CPUs, {first['machine']['platform']}.",
    ]
    return "\n".join(lines) + "\n"


def render(reports: list[dict], folder: Path) -> None:
    """serve_load.md and serve_load.png in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (folder / "serve_load.md").write_text(markdown(reports))
    runs = [
        ("raw_best", "raw graph, best batch"),
        ("server_sentences_per_second", "server"),
        ("server_batch_1_sentences_per_second", "server, batch 1"),
        ("two_models_sentences_per_second", "two models"),
    ]
    width = 0.8 / len(reports)
    figure, axis = plt.subplots(figsize=(7.2, 4.2))
    for index, report in enumerate(reports):
        spreads = [report["median"].get(key, (np.nan, np.nan, np.nan)) for key, _ in runs]
        medians = np.array([m for m, _, _ in spreads])
        errors = np.array([[m - lo for m, lo, _ in spreads], [hi - m for m, _, hi in spreads]])
        positions = np.arange(len(runs)) + index * width
        axis.bar(positions, medians, width, yerr=errors, capsize=3, label=report["runtime"])
    axis.set_xticks(np.arange(len(runs)) + width * (len(reports) - 1) / 2, [label for _, label in runs])
    axis.set_ylabel("sentences / s")
    axis.set_title("skeleton serve under load: medians, min to max", fontsize=10)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(folder / "serve_load.png", dpi=110)
    plt.close(figure)
    print((folder / "serve_load.md").read_text())


def _spread(values: list[float]) -> tuple[float, float, float]:
    return float(np.median(values)), float(min(values)), float(max(values))


def raw_in_child(directory: Path, texts: list, batch_sizes: tuple[int, ...], runtime: str) -> dict[str, float]:
    """:func:`raw_throughput` in a child process of its own: a runtime's idle threads left in this process
    (OpenVINO's pool) would take cores from whatever is measured next (a server, another model)."""
    import concurrent.futures
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=spawn) as child:
        return child.submit(raw_throughput, directory, texts, batch_sizes, runtime).result()


def warmed_best(raw: dict[str, float]) -> float:
    """The ceiling a server is held to: the best warmed figure of :func:`raw_throughput`, one batch at a time or
    as many as the runtime has streams."""
    return max(v for k, v in raw.items() if k.startswith(("batch_", "streams_batch_")))


def one_round(args, requests: list[list], flat: list, batch_sizes: tuple[int, ...], extra: list[str], wanted) -> dict:
    """The raw loop and each server run once, one after the other; figures as flat keys too."""
    raw = raw_in_child(args.directory, flat, batch_sizes, args.runtime)
    best = warmed_best(raw)
    result: dict = {f"raw_{k}": v for k, v in raw.items()}
    result["raw_best"] = best
    result["raw_cold_best"] = max(v for k, v in raw.items() if k.startswith(("cold_", "streams_cold_")))
    if "server" in wanted:
        result["server"] = run_server({"model": args.directory}, extra, requests, args.concurrency)
    if "server_batch_1" in wanted:
        options = [*extra, "--max-batch-size", "1"]
        result["server_batch_1"] = run_server({"model": args.directory}, options, requests, args.concurrency)
    if "two_models" in wanted:
        second_dir = args.second or args.directory
        second = make_requests(task_texts(args.second_data or args.data, second_dir), args.requests, args.seed + 1)
        mixed = [requests[i // 2] if i % 2 == 0 else second[i // 2] for i in range(args.requests)]
        result["two_models"] = run_server(
            {"first": args.directory, "second": second_dir}, extra, mixed, args.concurrency
        )
    for name in ("server", "server_batch_1", "two_models"):
        if name in result:
            for key in (
                "sentences_per_second",
                "p50_ms",
                "p99_ms",
                "first_tenth_sentences_per_second",
                "rest_sentences_per_second",
                "seconds_to_ready",
                "cpu_ms_per_sentence",
                "load_generator_cpu_ms_per_sentence",
                "fresh_vs_warm_first_tenth",
                "mean_batch_size",
                "padding_share",
            ):
                result[f"{name}_{key}"] = float(result[name][key])
    if "server" in result:
        result["server_vs_raw_best"] = result["server_sentences_per_second"] / best
        if "server_batch_1" in result:
            result["server_vs_batch_1"] = (
                result["server_sentences_per_second"] / result["server_batch_1_sentences_per_second"]
            )
    print(json.dumps({k: round(v, 3) for k, v in result.items() if isinstance(v, float)}), flush=True)
    return result


if __name__ == "__main__":
    main()
