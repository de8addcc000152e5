"""Why bf16 training on a CPU keeps attention off PyTorch's flash kernel (``skeleton.core.precision``).

Two measurements, each in one process with the contenders alternating, medians of ``ROUNDS`` after two
untimed calls each:

- attention alone: ``scaled_dot_product_attention`` forward and backward on 32 x 12 heads x 32 tokens x 32
  dims, fp32 or bf16, flash or math backend, with and without a padding mask;
- a whole MiniLM-L6 training step (forward, backward, AdamW; batch 32, half the rows padded to half the
  length) at 16, 32 and 64 tokens: fp32 (flash attention, PyTorch's default), bf16 autocast with the flash
  kernel (what training ran before), bf16 autocast with the math backend (what it runs now).

    python benchmarks/sweeps/training_precision/attention.py benchmarks/sweeps/training_precision/attention_amx.json
"""

import contextlib
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import AutoModelForSequenceClassification

from skeleton.core.machine import describe_cpu
from skeleton.core.modeling import resolve_model_path

ROUNDS = 7
BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "math": SDPBackend.MATH}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def alternated(calls: dict) -> dict:
    for call in calls.values():
        call()
        call()
    seconds = {name: [] for name in calls}
    for _ in range(ROUNDS):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - started)
    return {
        name: {"median_ms": round(1000 * statistics.median(s), 2), "min_ms": round(1000 * min(s), 2)}
        for name, s in seconds.items()
    }


def attention_call(dtype, backend, masked: bool, length: int = 32):
    q, k, v = (torch.randn(32, 12, length, 32, dtype=dtype, requires_grad=True) for _ in range(3))
    mask = None
    if masked:
        mask = torch.zeros(32, 1, 1, length, dtype=dtype)
        mask[:16, ..., length // 2 :] = torch.finfo(dtype).min

    def call():
        with sdpa_kernel(backend):
            F.scaled_dot_product_attention(q, k, v, attn_mask=mask).sum().backward()

    return call


torch.manual_seed(0)
model = AutoModelForSequenceClassification.from_pretrained(resolve_model_path("default"), num_labels=2)
optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)


def training_step(length: int, precision: str, backend):
    ids = torch.randint(1000, 20000, (32, length))
    mask = torch.ones_like(ids)
    mask[:16, length // 2 :] = 0
    labels = torch.randint(0, 2, (32,))

    def call():
        context = contextlib.nullcontext() if backend is None else sdpa_kernel(backend)
        with context, torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    return call


attention = {}
for masked in (False, True):
    calls = {
        f"{dtype}-{name}": attention_call(DTYPES[dtype], backend, masked)
        for dtype in DTYPES
        for name, backend in BACKENDS.items()
    }
    attention["masked" if masked else "no mask"] = alternated(calls)
steps = {}
for length in (16, 32, 64):
    calls = {
        "fp32 (flash)": training_step(length, "fp32", None),
        "bf16 flash": training_step(length, "bf16", SDPBackend.FLASH_ATTENTION),
        "bf16 math": training_step(length, "bf16", SDPBackend.MATH),
    }
    steps[f"32x{length}"] = alternated(calls)
result = {
    "attention_forward_backward_32x12x32x32": attention,
    "training_step": steps,
    "rounds": ROUNDS,
    "machine": describe_cpu(),
    "torch": torch.__version__,
}
print(json.dumps(result, indent=1))
json.dump(result, open(sys.argv[1], "w"), indent=1)
