"""Latency of the slim model against the unpruned prompt-tuned model, across batch sizes and lengths.

Builds the unpruned baseline from the run's ``prompt_tuned/`` prompt on the original backbone,
exports it the same way, then times every runtime (PyTorch, and each ONNX variant) on random token
ids: median of ``--repeats`` calls after ``--warmup`` calls, one thread count for all.

    python benchmarks/latency.py exported_models/sst2-all-MiniLM-L6-v2 --batch-sizes 1,8,32 --lengths 16,64,128
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from skeleton.artifacts import save_classifier
from skeleton.data import DataConfig
from skeleton.export import ExportConfig, export_directory
from skeleton.modeling import load_prompt_and_head
from skeleton.runtime import OnnxRuntime, TorchRuntime, read_manifest
from skeleton.tuning import skeleton_meta
from skeleton.workspace import ModelConfig, Workspace


def baseline_directory(directory: Path, work: Path) -> Path:
    """The unpruned prompt-tuned model of a compress run, saved and exported like the slim one."""
    report = json.loads((directory / "report.json").read_text())
    config = report["config"]
    data = DataConfig(**{**config["data"], "train_samples": 2, "validation_samples": 1, "test_samples": 64})
    workspace = Workspace(data, ModelConfig(**config["model"]))
    classifier = load_prompt_and_head(
        workspace.load_backbone(), workspace.tokenizer, workspace.spec, directory / "prompt_tuned"
    )
    out = work / "unpruned"
    save_classifier(classifier, workspace.tokenizer, out, None, skeleton_meta(workspace))
    export_directory(out, ExportConfig(), workspace=workspace)
    return out


def time_call(function, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def runtimes(directory: Path, threads: int) -> dict:
    onnx_dir = directory / "onnx"
    manifest = read_manifest(onnx_dir)
    found = {"torch": TorchRuntime(directory, device="cpu")}
    for variant, info in manifest["variants"].items():
        found[f"onnx-{variant}"] = OnnxRuntime(onnx_dir / info["file"], threads=threads)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--lengths", default="16,64,128")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    lengths = [int(n) for n in args.lengths.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        base = baseline_directory(args.directory, Path(temporary))
        slim_runtimes = runtimes(args.directory, args.threads)
        base_runtimes = runtimes(base, args.threads)
        rng = np.random.default_rng(0)
        for batch in batch_sizes:
            for length in lengths:
                ids = rng.integers(1000, 20000, size=(batch, length))
                encoded = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
                for name in slim_runtimes:
                    if name not in base_runtimes:
                        continue
                    base_s = time_call(lambda r=base_runtimes[name], e=encoded: r.run(e), args.warmup, args.repeats)
                    slim_s = time_call(lambda r=slim_runtimes[name], e=encoded: r.run(e), args.warmup, args.repeats)
                    rows.append(
                        {
                            "runtime": name,
                            "batch": batch,
                            "length": length,
                            "unpruned_ms": 1000 * base_s,
                            "slim_ms": 1000 * slim_s,
                            "speedup": base_s / slim_s,
                        }
                    )
    fastest_base = {}
    for row in rows:
        key = (row["batch"], row["length"])
        fastest_base[key] = min(fastest_base.get(key, float("inf")), row["unpruned_ms"])
    table = Table(title=f"latency, median of {args.repeats} calls, {args.threads} threads (ms)")
    for column in ("runtime", "batch", "tokens", "unpruned", "slim", "speed-up", "vs fastest unpruned"):
        table.add_column(column, justify="right")
    for row in rows:
        row["speedup_vs_fastest_unpruned"] = fastest_base[(row["batch"], row["length"])] / row["slim_ms"]
        table.add_row(
            row["runtime"],
            str(row["batch"]),
            str(row["length"]),
            f"{row['unpruned_ms']:.1f}",
            f"{row['slim_ms']:.1f}",
            f"{row['speedup']:.2f}x",
            f"{row['speedup_vs_fastest_unpruned']:.2f}x",
        )
    Console().print(table)
    if args.output:
        args.output.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
