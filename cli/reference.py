"""``docs/commands.md``: every command's every option, written from the command line itself, whose options
come from the config dataclasses (type, default, and help from each field's docstring entry), so the
page cannot drift from the library.

    python -m cli.reference            # rewrite docs/commands.md
    python -m cli.reference --check    # exit 1 when docs/commands.md differs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import click
import typer

from cli.main import app

DOC = Path(__file__).resolve().parents[1] / "docs" / "commands.md"
HEADER = """# Commands

Every command and option of `skeleton`, written by `python -m cli.reference` from the command line, whose
options are the library's config fields (`skeleton/core/config.py`): `skeleton compress --task T` and
`skeleton.compress(CompressConfig(DataConfig(T)))` run the same experiment. `tests/test_readme.py` holds
this page to that rendering. `skeleton COMMAND --help` shows the same in the terminal.
"""


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _names(parameter: click.Parameter) -> str:
    if isinstance(parameter, click.Argument):
        return f"`{parameter.human_readable_name}`"
    names = [*parameter.opts, *parameter.secondary_opts]
    return " / ".join(f"`{name}`" for name in names)


def _default(parameter: click.Parameter) -> str:
    if isinstance(parameter, click.Argument) or parameter.default is None:
        return ""
    default = parameter.default
    if isinstance(default, (list, tuple)):
        default = ",".join(str(v) for v in default) if default else ""
    if isinstance(default, bool):
        return "on" if default else "off"
    return f"`{default}`" if default != "" else ""


def command_section(name: str, command: click.Command) -> list[str]:
    """One command: its help, then its options grouped under their --help panels, in order."""
    lines = [f"## skeleton {name}", "", _cell((command.help or "").strip()), ""]
    panels: dict[str, list[click.Parameter]] = {}
    for parameter in command.params:
        if parameter.name == "help" or getattr(parameter, "hidden", False):
            continue
        panel = getattr(parameter, "rich_help_panel", None) or (
            "Arguments" if isinstance(parameter, click.Argument) else "Options"
        )
        panels.setdefault(panel, []).append(parameter)
    for panel, parameters in panels.items():
        lines += [f"### {panel}", "", "| option | default | meaning |", "|---|---|---|"]
        for parameter in parameters:
            lines.append(f"| {_names(parameter)} | {_default(parameter)} | {_cell(getattr(parameter, 'help', ''))} |")
        lines.append("")
    return lines


def render() -> str:
    group = typer.main.get_command(app)
    lines = [HEADER]
    for name in group.list_commands(click.Context(group)):
        lines += command_section(name, group.get_command(click.Context(group), name))
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/commands.md differs")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not DOC.is_file() or DOC.read_text() != text:
            print("docs/commands.md differs from the command line: run python -m cli.reference")
            return 1
        return 0
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
