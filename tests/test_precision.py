"""Training precision: fp32, or bf16 autocast where the device has it natively and a timed step pays."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from skeleton.core.batching import iterate_batches
from skeleton.core.config import CompressConfig, TrainConfig, TuneConfig
from skeleton.core.data import DataConfig
from skeleton.core.errors import SkeletonError
from skeleton.core.machine import FLAGS_ENV
from skeleton.core.precision import BF16_MIN_GAIN, choose_precision
from skeleton.core.timing import Timing
from skeleton.core.workspace import ModelConfig, Workspace
from skeleton.method import tuning
from tests.conftest import CPU_KINDS

CPU = torch.device("cpu")


def _never():
    raise AssertionError("nothing should have been timed")


def _timer(fp32_ms: float, bf16_ms: float, calls: list):
    """A stand-in for time_alternating: runs each contender once and reports the given medians."""

    def timer(contenders, **options):
        calls.append(options)
        for call in contenders.values():
            call()
        return {"fp32": Timing(fp32_ms, fp32_ms, fp32_ms, 3), "bf16": Timing(bf16_ms, bf16_ms, bf16_ms, 3)}

    return timer


def test_fp32_asked_or_no_native_bf16_times_nothing(monkeypatch):
    assert choose_precision("fp32", CPU, _never).used == "fp32"
    monkeypatch.setenv(FLAGS_ENV, CPU_KINDS["vnni"])  # AVX-512 and VNNI, but bf16 only emulated
    choice = choose_precision("auto", CPU, _never)
    assert (choice.used, choice.why, choice.step_ms) == ("fp32", "this CPU has no native bf16 arithmetic", None)


@pytest.mark.parametrize("kind", ["avx512-bf16", "amx"])
@pytest.mark.parametrize(("bf16_ms", "used"), [(100.0 / BF16_MIN_GAIN, "bf16"), (100.0 / BF16_MIN_GAIN + 1, "fp32")])
def test_auto_on_native_bf16_takes_bf16_only_when_a_step_gains_enough(monkeypatch, kind, bf16_ms, used):
    monkeypatch.setenv(FLAGS_ENV, CPU_KINDS[kind])
    ran, calls = [], []
    choice = choose_precision("auto", CPU, lambda: ran.append, timer=_timer(100.0, bf16_ms, calls))
    assert choice.used == used and ran == [False, True] and len(calls) == 1
    assert choice.step_ms == {"fp32": 100.0, "bf16": round(bf16_ms, 1)}
    assert f"against 100 ms in fp32 ({100.0 / bf16_ms:.2f}x" in choice.why


def test_bf16_asked_where_it_cannot_run_is_one_clear_error(monkeypatch):
    with pytest.raises(SkeletonError, match="not mps"):
        choose_precision("bf16", torch.device("mps"), _never)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    with pytest.raises(SkeletonError, match="this GPU has no bf16"):
        choose_precision("bf16", torch.device("cuda"), _never)
    # on a CPU without it, asked for is asked for: it runs, emulated, and says so
    assert "emulated" in choose_precision("bf16", CPU, _never).why
    for config in (CompressConfig, TuneConfig):
        with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16, got 'fp16'"):
            config(precision="fp16")
    with pytest.raises(ValueError, match="precision must be fp32 or bf16"):
        TrainConfig(precision="auto")


@pytest.fixture
def workspace(tiny_bert_dir, sst2_dir) -> Workspace:
    return Workspace(DataConfig("sst2", str(sst2_dir), train_samples=40), ModelConfig(model=str(tiny_bert_dir)))


def test_bf16_training_runs_the_forward_pass_in_bf16_and_keeps_fp32_weights(workspace):
    classifier = workspace.new_classifier()
    config = TrainConfig(steps=3, batch_size=16, evals_per_epoch=1, trains="full", precision="bf16")
    seen, forward = [], classifier.forward

    def recorded(*args, **kwargs):  # the logits' dtype of every forward pass, training's and validation's
        logits = forward(*args, **kwargs)
        seen.append((torch.is_grad_enabled(), logits.dtype))
        return logits

    classifier.forward = recorded
    before = {n: p.detach().clone() for n, p in classifier.named_parameters()}
    # without validating the start, the trained end is the state kept
    result = tuning.train_prompt(classifier, workspace.train, workspace.validation, config, CPU, validate_start=False)
    del classifier.forward
    assert result.steps == 3
    # training steps ran under bf16 autocast, validation passes (no gradients) in fp32
    assert {dtype for grad, dtype in seen if grad} == {torch.bfloat16}
    assert {dtype for grad, dtype in seen if not grad} == {torch.float32}
    assert all(p.dtype == torch.float32 for p in classifier.parameters())
    changed = [n for n, p in classifier.named_parameters() if not torch.equal(p, before[n])]
    assert any(".encoder.layer." in n for n in changed)  # the encoder's fp32 weights trained


def test_the_probe_times_a_copy_and_leaves_the_model_as_it_was(workspace):
    classifier = workspace.new_classifier()
    before = {n: (p.detach().clone(), p.requires_grad) for n, p in classifier.named_parameters()}
    step = tuning.precision_probe(classifier, workspace.train, TrainConfig(batch_size=16), CPU, 0)
    step(False)
    step(True)
    for name, parameter in classifier.named_parameters():
        assert torch.equal(parameter, before[name][0]) and parameter.requires_grad == before[name][1]
        assert parameter.grad is None


class _Ops(TorchDispatchMode):
    """Records the name of every aten op run under it, the backward pass's included."""

    def __init__(self):
        super().__init__()
        self.names: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func.__name__)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_bf16_training_on_a_cpu_keeps_attention_off_the_flash_kernel(workspace, precision):
    # the flash kernel's bf16 backward is the slow one on a CPU (precision's module docstring); fp32 keeps it
    classifier = workspace.new_classifier()
    config = TrainConfig(batch_size=8, trains="full", precision=precision)
    batch = next(iterate_batches(workspace.train, 8, workspace.pad_token_id, shuffle=True, seed=0))
    optimizer = torch.optim.AdamW([p for p in classifier.parameters() if p.requires_grad])
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    with _Ops() as ops:
        tuning._step(classifier, batch, config, optimizer, parameters)
    flash = {name for name in ops.names if "flash_attention" in name}
    math = {"_safe_softmax.default", "_softmax_backward_data.default"} & ops.names  # the math backend's softmax
    if precision == "bf16":
        assert not flash and len(math) == 2
    else:
        assert "_scaled_dot_product_flash_attention_for_cpu_backward.default" in flash and not math
