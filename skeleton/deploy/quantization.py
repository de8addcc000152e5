"""int8 graphs for the CPU: several ways to quantise, each judged on the validation split.

onnxruntime offers more than one way to make a transformer encoder graph int8, and which is fastest, and
which keeps the accuracy, depends on the model and on the CPU (VNNI or not). So the export builds
every candidate in ``INT8_METHODS``, measures each one's validation accuracy, its argmax agreement
with the float graph and its latency, and ships the fastest one that passes the bar:

- ``dynamic``: weights int8 ahead of time, activations quantised per call (MatMul only), on the
  fp32 graph; onnxruntime fuses the rest when the session starts. What ``optimum-cli onnxruntime
  quantize`` gives a user.
- ``dynamic-fused``: the same on the graph onnxruntime's transformer optimizer already fused, with
  ``DefaultTensorType`` so the quantiser can type the fused ops; the fused Attention becomes
  QAttention.
- ``static``: activations calibrated on training sentences (QDQ format), so no per-call
  quantisation of activations is needed.

Each is tried per tensor and per channel; without VNNI (AVX2 multiplies int8 pairs into int16 and
can saturate) also with 7-bit weights (``reduce_range``).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from skeleton.core.config import INT8_KINDS
from skeleton.core.machine import has_vnni


@dataclass(frozen=True)
class Int8Method:
    """One way of quantising a graph to int8."""

    kind: str
    per_channel: bool
    reduce_range: bool = False

    @property
    def name(self) -> str:
        parts = [self.kind, "per-channel" if self.per_channel else "per-tensor"]
        if self.reduce_range:
            parts.append("reduce-range")
        return "/".join(parts)

    def to_dict(self) -> dict:
        return {"name": self.name, **asdict(self)}


def int8_methods(kinds: tuple[str, ...] = INT8_KINDS, vnni: bool | None = None) -> list[Int8Method]:
    """Every candidate for this CPU: each kind per tensor and per channel, and with 7-bit weights
    where the CPU lacks VNNI."""
    vnni = has_vnni() if vnni is None else vnni
    ranges = (False,) if vnni else (False, True)
    return [
        Int8Method(kind, per_channel, reduce) for kind in kinds for per_channel in (False, True) for reduce in ranges
    ]


@contextmanager
def quiet_logging() -> Iterator[None]:
    """onnxruntime's quantiser and fusions log advice on the root logger; keep the user's console clean."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class _Calibration:
    """Feeds calibration batches (dicts of int64 arrays) to onnxruntime's static quantiser."""

    def __init__(self, batches: list[dict[str, np.ndarray]]):
        self._batches = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize(
    method: Int8Method,
    fp32: Path,
    fused: Path | None,
    target: Path,
    calibration: list[dict[str, np.ndarray]] | None = None,
) -> None:
    """Write ``method``'s int8 graph of ``fp32`` (or of the fused graph ``fused``) to ``target``.

    Only MatMul-like ops are quantised: that is where int8 pays on a CPU, and quantising the
    embedding Gather breaks graphs whose word embeddings are tied to an MLM decoder.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    with quiet_logging():
        if method.kind in ("dynamic", "dynamic-fused"):
            on_fused = method.kind == "dynamic-fused"
            if on_fused and fused is None:
                raise ValueError("dynamic-fused quantisation needs the fused (optimized) graph")
            quantize_dynamic(
                str(fused if on_fused else fp32),
                str(target),
                weight_type=QuantType.QInt8,
                per_channel=method.per_channel,
                reduce_range=method.reduce_range,
                op_types_to_quantize=["MatMul", "Attention"] if on_fused else ["MatMul"],
                # the fused ops carry no type information the quantiser can read
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT} if on_fused else {},
            )
        elif method.kind == "static":
            if not calibration:
                raise ValueError("static quantisation needs calibration batches")
            with tempfile.TemporaryDirectory() as scratch:
                quantize_static(
                    str(fp32),
                    str(target),
                    _Calibration(calibration),
                    quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=["MatMul"],
                    per_channel=method.per_channel,
                    reduce_range=method.reduce_range,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax,
                    calibration_cache_path=Path(scratch) / "calibration",
                    extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
                )
        else:
            raise ValueError(f"unknown int8 kind {method.kind!r}; choose one of {', '.join(INT8_KINDS)}")


@dataclass
class Int8Bar:
    """When an int8 graph is good enough to ship, judged against the float graph on validation.

    Attributes:
        max_accuracy_drop: validation accuracy may fall at most this many points below fp32.
        min_agreement: the share of validation inputs whose argmax equals fp32's.
    """

    max_accuracy_drop: float = 0.5
    min_agreement: float = 0.97

    def problem(self, accuracy_drop: float | None, agreement: float) -> str | None:
        """Why a candidate fails, or None."""
        if agreement < self.min_agreement:
            return (
                f"agrees with fp32 on {100 * agreement:.1f}% of validation inputs "
                f"(needs {100 * self.min_agreement:.0f}%)"
            )
        if accuracy_drop is not None and accuracy_drop > self.max_accuracy_drop:
            return f"loses {accuracy_drop:.2f} validation points against fp32 (at most {self.max_accuracy_drop})"
        return None
