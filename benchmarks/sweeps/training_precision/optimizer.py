"""What a fused AdamW buys a training step on a CPU (``skeleton.method.tuning._optimizer``).

A three-layer MiniLM (the default model's first three layers, embeddings frozen, a linear head) trained on batches
of 32 x 16 random tokens, as a Skeleton model condenses: forward, cross-entropy, backward, gradient clipping,
AdamW. Three copies, one per AdamW implementation (PyTorch's per-tensor loop, its default on a CPU; foreach;
fused), their steps alternating in one process, in fp32 and in bf16 autocast (attention by the math backend,
as training runs it); medians of ``ROUNDS`` after two untimed steps each.

    python benchmarks/sweeps/training_precision/optimizer.py benchmarks/sweeps/training_precision/optimizer_amx.json
"""

import copy
import json
import statistics
import sys
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import AutoModel

from skeleton.core.machine import describe_cpu
from skeleton.core.modeling import resolve_model_path

ROUNDS = 15
IMPLEMENTATIONS = {"loop (default)": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}

torch.manual_seed(0)
base = AutoModel.from_pretrained(resolve_model_path("default"), num_hidden_layers=3)
copies = {}
for name, options in IMPLEMENTATIONS.items():
    model, head = copy.deepcopy(base), torch.nn.Linear(384, 2)
    model.embeddings.requires_grad_(False)
    parameters = [*model.encoder.parameters(), *head.parameters()]
    copies[name] = (model, head, parameters, torch.optim.AdamW(parameters, lr=1e-4, **options))


def step(name: str, bf16: bool) -> None:
    model, head, parameters, optimizer = copies[name]
    ids = torch.randint(1000, 20000, (32, 16))
    with sdpa_kernel(SDPBackend.MATH), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = head(model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[:, 0])
    loss = torch.nn.functional.cross_entropy(logits.float(), torch.randint(0, 2, (32,)))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    optimizer.step()


result = {"step_ms": {}, "rounds": ROUNDS, "machine": describe_cpu(), "torch": torch.__version__}
for precision in ("fp32", "bf16"):
    seconds = {name: [] for name in copies}
    for name in copies:
        step(name, precision == "bf16")
        step(name, precision == "bf16")
    for _ in range(ROUNDS):
        for name in copies:
            started = time.perf_counter()
            step(name, precision == "bf16")
            seconds[name].append(time.perf_counter() - started)
    result["step_ms"][precision] = {
        name: {"median": round(1000 * statistics.median(s), 1), "min": round(1000 * min(s), 1)}
        for name, s in seconds.items()
    }
print(json.dumps(result, indent=1))
json.dump(result, open(sys.argv[1], "w"), indent=1)
