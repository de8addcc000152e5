"""What the CPU can do, read in one place: every choice that depends on the CPU (the int8 methods offered,
7-bit weight ranges, the bf16 candidates, the half-precision runtimes worth timing) reads
:func:`cpu_flags`, so one setting simulates another CPU for all of them.

``SKELETON_CPU_FLAGS`` (a space- or comma-separated list of /proc/cpuinfo flags), when set, replaces the
flags this machine reports: the test suite sets it to exercise every CPU kind on any machine, and a user
may set it to build on one machine the candidates another will run (an AVX2 build host exporting for an
AMX server). Only the choices read it; the runtimes still run on the hardware that is there.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

FLAGS_ENV = "SKELETON_CPU_FLAGS"
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})  # int8 dot products without int16 saturation
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # bf16 arithmetic in hardware
INT8_INSTRUCTION_FLAGS = frozenset({"avx2", "avx512_vnni", "avx_vnni", "amx_int8", "avx512bw"})
# the flags worth naming beside a figure: they decide which runtime and precision is fastest
REPORTED_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_bf16",
    "amx_int8",
)


def _proc_cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_flags() -> set[str]:
    """The CPU's feature flags: ``$SKELETON_CPU_FLAGS`` when set, else /proc/cpuinfo's (Linux); empty
    where neither can be read."""
    simulated = os.environ.get(FLAGS_ENV)
    if simulated is not None:
        return set(simulated.replace(",", " ").split())
    for line in _proc_cpuinfo().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def flags_simulated() -> bool:
    return os.environ.get(FLAGS_ENV) is not None


def cpu_name() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    for line in _proc_cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def has_vnni(flags: set[str] | None = None) -> bool:
    """int8 dot products that do not saturate (VNNI or AMX); without them onnxruntime's int8 weights
    want 7-bit ranges."""
    return bool(VNNI_FLAGS & (cpu_flags() if flags is None else flags))


def native_bf16(flags: set[str] | None = None) -> bool:
    """bf16 arithmetic in hardware (AVX512-BF16 or AMX): where a bf16 runtime can beat fp32."""
    return bool(BF16_FLAGS & (cpu_flags() if flags is None else flags))


def int8_instructions(flags: set[str] | None = None) -> list[str]:
    """The int8 dot-product extensions this CPU has."""
    return sorted(INT8_INSTRUCTION_FLAGS & (cpu_flags() if flags is None else flags))


def describe_cpu() -> dict:
    """The CPU a figure was measured on: name, cores, the flags that decide the fastest runtime, and
    whether those flags were simulated."""
    flags = cpu_flags()
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "cpu_flags": [f for f in REPORTED_FLAGS if f in flags],
        "flags_simulated": flags_simulated(),
        "platform": platform.platform(),
    }
