"""Prompt-tuning settings per task with the default model, judged on the validation split.

Each setting is one ``skeleton.tune`` run; the table shows validation accuracy first (what the
default is chosen on) and test accuracy beside it (reported only). Writes JSON and Markdown.

    python benchmarks/sweep_tuning.py --task sst2 --data-dir ../shared/data/sst2 --jobs 2
    python benchmarks/sweep_tuning.py --task mrpc --data-dir ../shared/data/mrpc --jobs 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
from dataclasses import replace
from pathlib import Path

from skeleton.core.config import DataConfig, ModelConfig, TrainConfig, TuneConfig

DEFAULT = TrainConfig()
SST2 = {
    "no template, 8k x 2 epochs, head lr 1e-2, backbone dropout": (
        dict(use_template=False),
        dict(train_samples=8000),
        dict(epochs=2.0, backbone_dropout=True),
    ),
    "template, 8k x 2 epochs, head lr 1e-2, backbone dropout": (
        {},
        dict(train_samples=8000),
        dict(epochs=2.0, backbone_dropout=True),
    ),
    "template, 8k x 2 epochs, head lr 1e-2, no dropout": ({}, dict(train_samples=8000), dict(epochs=2.0)),
    "template, 8k x 2 epochs, prompt lr 1e-2, head lr 3e-2, dropout": (
        {},
        dict(train_samples=8000),
        dict(epochs=2.0, lr=1e-2, head_lr=3e-2, backbone_dropout=True),
    ),
    "template, 8k x 2 epochs, prompt lr 1e-1, no dropout": ({}, dict(train_samples=8000), dict(epochs=2.0, lr=1e-1)),
    "template, 20k x 1 epoch, head lr 3e-2, no dropout": ({}, {}, dict(head_lr=3e-2)),
    "template, 20k x 1 epoch, head lr 1e-2, no dropout (the defaults)": ({}, {}, {}),
}
# MRPC: 3,672 training pairs, 115 steps an epoch at batch 32; a training step costs about 2.5 s here
MRPC = {
    "1 epoch (115 steps), random head": ({}, {}, {}),
    "115 steps, probe head": ({}, {}, dict(head_init="probe")),
    "345 steps, probe head": ({}, {}, dict(steps=345, head_init="probe")),
    "345 steps, probe head, prompt lr 1e-1": ({}, {}, dict(steps=345, lr=1e-1, head_init="probe")),
    "345 steps, random head, head lr 3e-2": ({}, {}, dict(steps=345, head_lr=3e-2)),
    # half the cost a step: more updates within the 15-minute compress budget
    "345 steps of 16, probe head": ({}, {}, dict(steps=345, batch_size=16, head_init="probe")),
    "345 steps of 16, random head, head lr 3e-2": ({}, {}, dict(steps=345, batch_size=16, head_lr=3e-2)),
}
SWEEPS = {"sst2": SST2, "mrpc": MRPC}


def run(args: tuple[str, str, int]) -> dict:
    import torch

    from skeleton.method.tuning import tune

    task, name, data_dir, threads = args
    torch.set_num_threads(threads)
    model_overrides, data_overrides, train_overrides = SWEEPS[task][name]
    with tempfile.TemporaryDirectory() as scratch:
        config = TuneConfig(
            data=replace(DataConfig(task, data_dir), **data_overrides),
            model=replace(ModelConfig(), **model_overrides),
            train=replace(DEFAULT, **train_overrides),
            output=str(Path(scratch) / "out"),
            device="cpu",
        )
        result = tune(config)
    return {
        "setting": name,
        "validation": result.validation,
        "test": result.test,
        "majority_class": result.majority_class,
        "steps": result.train.steps,
        "batch_size": config.train.batch_size,
        "minutes": result.train.seconds / 60,
        "history": result.train.history,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(SWEEPS), default="sst2")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--jobs", type=int, default=1, help="settings run at once (threads are split among them)")
    parser.add_argument("--only", nargs="*", help="setting names to run (default: all not yet in the output)")
    parser.add_argument("--output", type=Path, help="default: benchmarks/sweeps/tuning_sweep_<task>_minilm")
    args = parser.parse_args()
    settings = SWEEPS[args.task]
    args.output = args.output or Path(f"benchmarks/sweeps/tuning_sweep_{args.task}_minilm")
    results = args.output.with_suffix(".json")
    # each finished setting is written at once, so an interrupted sweep resumes where it stopped
    rows = json.loads(results.read_text()) if results.is_file() else []
    done = {row["setting"] for row in rows}
    names = [n for n in (args.only or list(settings)) if n not in done]
    threads = max(1, multiprocessing.cpu_count() // args.jobs)
    results.parent.mkdir(parents=True, exist_ok=True)
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for row in pool.imap_unordered(run, [(args.task, name, args.data_dir, threads) for name in names]):
            rows.append(row)
            results.write_text(json.dumps(rows, indent=2))
            print(f"{row['setting']}: validation {row['validation']['accuracy']:.2f}", flush=True)
    rows.sort(key=lambda r: list(settings).index(r["setting"]))
    args.output.with_suffix(".md").write_text(markdown(rows) + "\n")
    print(markdown(rows))


def _figures(split: dict) -> str:
    return f"{split['accuracy']:.2f}" + (f" / {split['f1']:.2f}" if "f1" in split else "")


def markdown(rows: list[dict]) -> str:
    """The sweep as a table: the majority class first, then each setting, the validation choice in bold.

    Ties on validation accuracy go to the cheaper setting (fewer training rows processed, steps x
    batch size): a setting's cost decides whether compress fits its time budget.
    """
    best = max(rows, key=lambda r: (round(r["validation"]["accuracy"], 2), -r["steps"] * r.get("batch_size", 32)))
    metric = "accuracy / F1" if "f1" in rows[0]["validation"] else "accuracy"
    majority = rows[0]["majority_class"]
    lines = [
        f"| setting | steps | minutes | validation {metric} | test {metric} |",
        "|---|---|---|---|---|",
        f"| majority class | | | {_figures(majority['validation'])} | {_figures(majority['test'])} |",
    ]
    for r in rows:
        name = f"**{r['setting']}**" if r is best else r["setting"]
        lines.append(
            f"| {name} | {r['steps']} | {r['minutes']:.1f} | {_figures(r['validation'])} | {_figures(r['test'])} |"
        )
    return "\n".join([*lines, "", f"Chosen on validation: {best['setting']}."])


if __name__ == "__main__":
    main()
