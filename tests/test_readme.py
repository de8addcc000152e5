"""The README's figures come from committed reports, rendered by a command, never typed by hand."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _renderer():
    spec = importlib.util.spec_from_file_location("readme_results", ROOT / "benchmarks" / "readme_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_results_section_is_the_rendering_of_the_committed_reports():
    """SST-2, the pair task, a user's file and serving: each section between its markers."""
    renderer = _renderer()
    text = (ROOT / "README.md").read_text()
    assert len(renderer.SECTIONS) == 4
    for start_marker, end_marker, results, render in renderer.SECTIONS:
        start, end = renderer._section(text, start_marker, end_marker)
        assert text[start:end] == render(results), f"{start_marker}: run python benchmarks/readme_results.py"


@pytest.mark.parametrize(
    ("low", "high", "words"),
    [(-2.41, 1.03, "no difference shown"), (0.2, 1.5, "higher"), (-1.4, -0.1, "lower")],
)
def test_a_difference_is_worded_by_its_interval(low, high, words):
    ci = {"difference": (low + high) / 2, "low": low, "high": high}
    assert _renderer().interval_words(ci).endswith(words)


def test_every_module_is_in_the_readme_map():
    """The README's module map lists every module of the package, by its path under skeleton/."""
    text = (ROOT / "README.md").read_text()
    modules = [
        str(path.relative_to(ROOT / "skeleton"))
        for path in (ROOT / "skeleton").rglob("*.py")
        if path.name != "__init__.py"
    ]
    missing = [module for module in modules if f"`{module}`" not in text]
    assert not missing, f"README.md's module map does not list {missing}"
