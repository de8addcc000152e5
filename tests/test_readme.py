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
    """The README's summary, and in docs/ SST-2 and the pair task (each on an AVX2 and on an AMX CPU), a user's
    file and serving (on each CPU): each section between its markers."""
    renderer = _renderer()
    assert [path.name for path, *_ in renderer.SECTIONS] == [
        "README.md",
        "results.md",
        "results.md",
        "results.md",
        "results.md",
        "results.md",
        "serving.md",
        "serving.md",
    ]
    for path, start_marker, end_marker, results, render in renderer.SECTIONS:
        text = path.read_text()
        start, end = renderer._section(text, start_marker, end_marker, path)
        assert text[start:end] == render(results), (
            f"{path.name} {start_marker}: run python benchmarks/readme_results.py"
        )


def test_the_readme_is_short_and_links_what_moved():
    """At most 200 lines, and every document it sends a reader to exists."""
    import re

    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert {"docs/commands.md", "docs/results.md", "docs/serving.md", "docs/architecture.md"} <= set(links)
    assert all((ROOT / link).is_file() for link in links), links


def test_the_commands_page_is_the_command_lines_own():
    """docs/commands.md is what python -m cli.reference writes from the options (the config fields)."""
    from cli.reference import DOC, render

    assert DOC.read_text() == render(), "run python -m cli.reference"


@pytest.mark.parametrize(
    ("low", "high", "words"),
    [(-2.41, 1.03, "no difference shown"), (0.2, 1.5, "higher"), (-1.4, -0.1, "lower")],
)
def test_a_difference_is_worded_by_its_interval(low, high, words):
    ci = {"difference": (low + high) / 2, "low": low, "high": high}
    assert _renderer().interval_words(ci).endswith(words)


def test_every_module_is_in_the_architecture_map():
    """docs/architecture.md's module map lists every module of the package, by its path under skeleton/."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    modules = [
        str(path.relative_to(ROOT / "skeleton"))
        for path in (ROOT / "skeleton").rglob("*.py")
        if path.name != "__init__.py"
    ]
    missing = [module for module in modules if f"`{module}`" not in text]
    assert not missing, f"docs/architecture.md's module map does not list {missing}"


def test_the_search_sentence_names_step_4s_full_condensations():
    """A run whose step 4 condensed several values in full (a boundary check, fallbacks) says what each reached;
    a report without them (before 2026-12-04, or none run) says nothing."""
    renderer = _renderer()
    done = {"condensed_in_full": {"0.05": 86.694, "0.10": 88.686}}
    assert renderer._condensed_in_full(done) == " Condensed in full in step 4: 0.05 to 86.69, 0.10 to 88.69."
    assert renderer._condensed_in_full({}) == ""
