"""The CPU's flags, read in one place and simulated by SKELETON_CPU_FLAGS."""

import pytest

from skeleton.core.machine import (
    FLAGS_ENV,
    REPORTED_FLAGS,
    cpu_flags,
    describe_cpu,
    has_vnni,
    int8_instructions,
    native_bf16,
)
from tests.conftest import CPU_KINDS

# what each simulated kind offers, worked out from the flags by hand
EXPECTED = {"avx2": (False, False), "vnni": (True, False), "avx512-bf16": (True, True), "amx": (True, True)}


def test_every_kind_has_its_expectation():
    assert set(EXPECTED) == set(CPU_KINDS)


def test_the_flags_the_choices_read(cpu_kind):
    vnni, bf16 = EXPECTED[cpu_kind]
    assert cpu_flags() == set(CPU_KINDS[cpu_kind].split())
    assert (has_vnni(), native_bf16()) == (vnni, bf16)
    assert ("avx512_vnni" in int8_instructions()) == vnni and "avx2" in int8_instructions()
    described = describe_cpu()
    assert described["flags_simulated"] is True
    assert set(described["cpu_flags"]) == set(CPU_KINDS[cpu_kind].split()) & set(REPORTED_FLAGS)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [("avx2, avx512_vnni", {"avx2", "avx512_vnni"}), ("  amx_bf16  ", {"amx_bf16"}), ("", set())],
)
def test_the_setting_replaces_the_machine_flags(monkeypatch, setting, expected):
    monkeypatch.setenv(FLAGS_ENV, setting)
    assert cpu_flags() == expected


def test_explicit_flags_are_read_as_given():
    assert has_vnni({"amx_int8"}) and not has_vnni({"avx2", "avx512f"})
    assert native_bf16({"avx512_bf16"}) and not native_bf16({"avx512_vnni"})


def test_without_the_setting_the_machine_is_read(monkeypatch, tmp_path):
    import skeleton.core.machine as machine

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 amx_bf16\n\n")
    monkeypatch.setattr(machine, "_proc_cpuinfo", cpuinfo.read_text)
    monkeypatch.delenv(FLAGS_ENV)
    assert cpu_flags() == {"fpu", "avx2", "amx_bf16"} and native_bf16() and not has_vnni()
    assert describe_cpu()["cpu"] == "Test CPU" and describe_cpu()["flags_simulated"] is False
