"""One MiniLM-L6 training step (forward, backward, AdamW) of 32 x 32 random tokens in fp32 and in bf16
autocast, alternated, medians of 5 after one untimed step each: what emulated bf16 costs on a CPU without
native bf16 (why ``--precision auto`` times nothing there).

    python benchmarks/sweeps/training_precision/step_time.py benchmarks/sweeps/training_precision/step_time.json
"""

import json
import statistics
import sys
import time

import torch
from transformers import AutoModelForSequenceClassification

from skeleton.core.machine import describe_cpu
from skeleton.core.modeling import resolve_model_path

torch.manual_seed(0)
model = AutoModelForSequenceClassification.from_pretrained(resolve_model_path("default"), num_labels=2)
optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
ids = torch.randint(1000, 20000, (32, 32))
labels = torch.randint(0, 2, (32,))


def step(precision: str) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


for precision in ("fp32", "bf16"):
    step(precision)
seconds: dict[str, list[float]] = {"fp32": [], "bf16": []}
for _ in range(5):
    for precision in seconds:
        started = time.perf_counter()
        step(precision)
        seconds[precision].append(time.perf_counter() - started)
result = {
    "median_ms": {p: round(1000 * statistics.median(s), 1) for p, s in seconds.items()},
    "machine": describe_cpu(),
    "torch": torch.__version__,
}
print(json.dumps(result, indent=1))
json.dump(result, open(sys.argv[1], "w"), indent=1)
