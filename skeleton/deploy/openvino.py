"""OpenVINO int8 graphs: NNCF post-training quantisation of the exported fp32 graph.

NNCF quantises an OpenVINO model with statistics gathered on calibration batches (training sentences,
never validation or test). Which of its settings keeps the accuracy and which runs fastest depends on
the model and the CPU, so, as for onnxruntime's candidates, the export builds each method in
``NNCF_METHODS``, judges it on the validation split against the fp32 graph, times them all and ships
the fastest that passes the bar:

- ``default``: ``ModelType.TRANSFORMER`` (mixed preset: symmetric weights, asymmetric activations,
  SmoothQuant on MatMuls with NNCF's transformer alpha);
- ``no-smoothquant``: the same without SmoothQuant;
- ``smoothquant-0.5``: SmoothQuant moving more of the activations' range into the weights.

The result is saved as OpenVINO IR (``.xml`` + ``.bin``): NNCF's OpenVINO backend is its primary path
and the IR compiles without converting an ONNX graph at every start.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np

from skeleton.core.config import NNCF_METHODS


def nncf_quantize(
    method: str, source: Path, target: Path, calibration: list[dict[str, np.ndarray]], bias_correction: bool = True
) -> None:
    """Write ``method``'s int8 IR of the graph ``source`` to ``target`` (``.xml``; ``.bin`` beside it). Without
    ``bias_correction`` NNCF's fast bias correction is left out: the same operations, only bias values differ
    (for graphs that are only timed: ``skeleton.measure.latency.build_graph``)."""
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters

    if method not in NNCF_METHODS:
        raise ValueError(f"unknown NNCF method {method!r}; choose one of {', '.join(NNCF_METHODS)}")
    if not calibration:
        raise ValueError("NNCF quantisation needs calibration batches")
    nncf.set_log_level(logging.ERROR)
    model = ov.Core().read_model(str(source))
    inputs = {name for port in model.inputs for name in port.get_names()}
    batches = [{k: np.asarray(v, dtype=np.int64) for k, v in b.items() if k in inputs} for b in calibration]
    advanced = {} if bias_correction else {"disable_bias_correction": True}
    if method != "default":
        alpha = -1.0 if method == "no-smoothquant" else 0.5
        advanced["smooth_quant_alphas"] = AdvancedSmoothQuantParameters(matmul=alpha)
    with contextlib.redirect_stdout(io.StringIO()):  # NNCF draws progress bars; the export reports its own
        quantized = nncf.quantize(
            model,
            nncf.Dataset(batches),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(batches),
            advanced_parameters=AdvancedQuantizationParameters(**advanced) if advanced else None,
        )
    ov.save_model(quantized, str(target), compress_to_fp16=False)


def ir_files(xml: Path) -> list[Path]:
    """An IR graph's files: the ``.xml`` and its ``.bin``."""
    return [xml, xml.with_suffix(".bin")]
