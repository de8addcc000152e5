"""The precision training runs in: fp32, or bf16 autocast where the device does bf16 arithmetic natively
and a measured training step says it pays.

Under ``torch.autocast`` the matrix products run in bf16 while the weights, the optimiser state and the
loss stay in fp32, as transformers' ``Trainer`` does with ``--bf16``; what is saved and exported is the
same fp32 model either way. Where bf16 is native (CUDA GPUs that report it; CPUs with AVX512-BF16 or AMX)
it is often faster, but not always for a model this small, so ``auto`` times it: one forward and backward
pass of the run's own model on one of its own training batches, in fp32 and in bf16, calls alternating
(:func:`~skeleton.core.timing.time_alternating`), and bf16 is used only when it is at least
:data:`BF16_MIN_GAIN` times as fast. Where bf16 is emulated (a CPU with AVX2 alone) nothing is timed: on
the 2-core AVX2 EPYC this project measures on, one MiniLM-L6 training step of 32 x 32 tokens took 13.5 s
in bf16 autocast against 0.69 s in fp32 (``benchmarks/sweeps/training_precision/step_time.json``).
The teacher's logits for distillation are computed in the training precision too; evaluation passes (which
accuracies every choice reads) and attribution scoring stay in fp32 whatever trains.

On a CPU, bf16 training runs attention by PyTorch's math backend, not its fused flash kernel, whose backward
pass in bf16 is several times slower than in fp32. On a 2-core Intel Xeon with AMX, one attention forward and
backward of 32 x 12 heads x 32 x 32 took 18.6-23.7 ms in bf16 with the flash kernel against 2.9-4.3 ms in fp32
(math backend in bf16: 5.5-7.2 ms), and a whole MiniLM-L6 training step of batch 32 at 16 / 32 / 64 tokens
ran 0.93x / 1.28x / 1.20x as fast as fp32 in bf16 with the flash kernel, 1.40x / 1.71x / 1.84x with the math
backend (``benchmarks/sweeps/training_precision/attention_amx.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import asdict, dataclass

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from skeleton.core.config import check_precision
from skeleton.core.errors import SkeletonError
from skeleton.core.machine import native_bf16
from skeleton.core.timing import time_alternating

BF16_MIN_GAIN = 1.2  # bf16 must train at least this much faster than fp32 for auto to choose it
PROBE_REPEATS = 3  # alternated timed steps of each precision (after one untimed step each)


@dataclass
class PrecisionChoice:
    """What training runs in, and why: ``asked`` (``auto``, ``fp32`` or ``bf16``), ``used`` (``fp32`` or
    ``bf16``), ``why`` (one line) and, when ``auto`` timed the two, each one's median ms per step."""

    asked: str
    used: str
    why: str
    step_ms: dict[str, float] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """bf16 autocast on ``device`` when ``precision`` is ``bf16``, else nothing; on a CPU in bf16 attention
    runs by the math backend (the flash kernel's bf16 backward is the slow one, see the module docstring)."""
    stack = ExitStack()
    stack.enter_context(torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"))
    if precision == "bf16" and device.type == "cpu":
        stack.enter_context(sdpa_kernel(SDPBackend.MATH))
    return stack


def native_bf16_on(device: torch.device) -> bool:
    """Whether ``device`` does bf16 arithmetic in hardware (where bf16 autocast can beat fp32)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    return device.type == "cpu" and native_bf16()


def choose_precision(
    asked: str,
    device: torch.device,
    probe: Callable[[], Callable[[bool], None]],
    timer: Callable[..., dict] = time_alternating,
) -> PrecisionChoice:
    """The training precision for ``asked`` on ``device``.

    Args:
        asked: ``fp32``; ``bf16`` (on a CPU without native bf16 it runs, emulated and slow); ``auto``.
        device: where training runs.
        probe: builds, only when ``auto`` has something to time, the step to time: called with
            ``True`` it runs one training step's forward and backward pass in bf16 autocast, with
            ``False`` in fp32.
        timer: :func:`~skeleton.core.timing.time_alternating` (a test passes its own).
    """
    check_precision(asked)
    if asked == "fp32":
        return PrecisionChoice(asked, "fp32", "asked for")
    native = native_bf16_on(device)
    if asked == "bf16":
        if device.type not in ("cpu", "cuda"):
            raise SkeletonError(f"bf16 training runs on a CPU or a CUDA GPU, not {device.type}: use --precision fp32")
        if device.type == "cuda" and not native:
            raise SkeletonError("this GPU has no bf16 arithmetic: use --precision fp32 (or auto)")
        emulated = "" if native else " (emulated on this CPU: slower than fp32)"
        return PrecisionChoice(asked, "bf16", "asked for" + emulated)
    if not native:
        return PrecisionChoice(asked, "fp32", f"{_device_name(device)} has no native bf16 arithmetic")
    step = probe()
    timings = timer({"fp32": lambda: step(False), "bf16": lambda: step(True)}, repeats=PROBE_REPEATS, warmup=1)
    step_ms = {name: round(timing.median_ms, 1) for name, timing in timings.items()}
    gain = step_ms["fp32"] / step_ms["bf16"]
    used = "bf16" if gain >= BF16_MIN_GAIN else "fp32"
    verdict = "at least" if used == "bf16" else "under"
    why = (
        f"a training step took {step_ms['bf16']:.0f} ms in bf16 against {step_ms['fp32']:.0f} ms in fp32 "
        f"({gain:.2f}x, {verdict} the {BF16_MIN_GAIN}x bf16 must gain)"
    )
    return PrecisionChoice(asked, used, why, step_ms)


def _device_name(device: torch.device) -> str:
    return "this CPU" if device.type == "cpu" else f"device {device}"


def synchronize(device: torch.device) -> None:
    """Wait for ``device``'s queued work (a timed step must end when its kernels do)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
