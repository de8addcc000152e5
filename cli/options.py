"""Command-line options built from the config dataclasses, so that a setting has one home.

Each option takes its type and default from a config field and its help from the field's entry in
the config class's docstring (``Attributes:``), so the command line cannot drift from the library.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, fields
from typing import Annotated, Any

import typer

RECIPE = " [default: the task's recipe, see 'skeleton tasks']"
# a config field's name in an error message: snake_case anywhere (not inside a path, nor quoted: a quoted name
# is a literal key or column, as a task file's 'text_columns'), or a plain word that starts the message and is
# followed by "must"
# the headings --help lists options under, in this order (options without one come first, under "Options")
DATA_PANEL, MODEL_PANEL, TEACHER_PANEL = "Data", "Model", "Step 1: the teacher"
SCORING_PANEL, SEARCH_PANEL, CONDENSE_PANEL = "Step 2: scoring", "Step 3: search and pruning", "Step 4: condensation"
EXPORT_PANEL, OUTPUT_PANEL = "Export", "Output"
PANELS = (
    None,
    DATA_PANEL,
    MODEL_PANEL,
    TEACHER_PANEL,
    SCORING_PANEL,
    SEARCH_PANEL,
    CONDENSE_PANEL,
    EXPORT_PANEL,
    OUTPUT_PANEL,
)
QUOTED_FIELD = re.compile(r"'([a-z][a-z0-9_]*)'")  # a field named in a docstring, as 'data_file'
FIELD_WORD = re.compile(r"(?<![\w/.'-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b|^[a-z]+(?= must )")


def field_help(cls: type) -> dict[str, str]:
    """Each field's entry in ``cls``'s docstring ``Attributes:`` section, on one line."""
    text = inspect.getdoc(cls) or ""
    section = text.split("Attributes:", 1)[1] if "Attributes:" in text else ""
    helps: dict[str, str] = {}
    for entry in re.split(r"\n(?=\S)", inspect.cleandoc(section)):
        names, _, body = entry.partition(":")
        body = re.sub(r"``([^`]*)``", r"'\1'", " ".join(body.split()))
        for name in names.split(","):
            helps[name.strip()] = body
    return helps


@dataclass(frozen=True)
class Option:
    """One command-line option: the config field it comes from and how the command line names it."""

    cls: type
    field: str
    name: str = ""  # the parameter (and --flag) name; default: the field's
    recipe: bool = False  # default None: the task's recipe fills it in
    help_prefix: str = ""
    panel: str | None = None  # the heading it is listed under in --help

    @property
    def parameter_name(self) -> str:
        return self.name or self.field

    def parameter(self, flags: dict[str, str | None] | None = None) -> inspect.Parameter:
        """The command's parameter; ``flags`` (field -> option name) turns the help's 'field' into '--flag'."""
        spec = next(f for f in fields(self.cls) if f.name == self.field)
        kind = typing.get_type_hints(self.cls)[self.field]
        help_text = self.help_prefix + field_help(self.cls).get(self.field, "")
        if flags:
            help_text = QUOTED_FIELD.sub(
                lambda m: f"--{flags[m[1]].replace('_', '-')}" if flags.get(m[1]) else m[0], help_text
            )
        if self.recipe:
            kind, default, help_text = kind | None, None, help_text + RECIPE
        else:
            default = spec.default if spec.default is not MISSING else spec.default_factory()
        # a negative switch (no_auth) is one flag, not --no-auth/--no-no-auth
        names = [f"--{self.parameter_name.replace('_', '-')}"] if kind is bool and self.field.startswith("no_") else []
        annotation = Annotated[kind, typer.Option(*names, help=help_text, rich_help_panel=self.panel)]
        return inspect.Parameter(
            self.parameter_name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
        )


def options(cls: type, names: Iterable[str], panel: str | None = None, **renamed: str) -> list[Option]:
    """Options for ``names`` of ``cls``'s fields, listed under ``panel`` in ``--help``; ``renamed`` maps a
    field to its command-line name."""
    return [Option(cls, name, renamed.get(name, ""), panel=panel) for name in names]


def in_panel(panel: str, group: list[Option]) -> list[Option]:
    """``group`` listed under ``panel`` in ``--help``."""
    return [dataclasses.replace(option, panel=panel) for option in group]


def option_names(groups: Iterable[list[Option]]) -> dict[str, str | None]:
    """Each config field of ``groups`` -> the option that sets it; ``None`` for a field several options set
    (``epochs``: ``--epochs`` and ``--condense-epochs``)."""
    names: dict[str, set[str]] = {}
    for option in (option for group in groups for option in group):
        names.setdefault(option.field, set()).add(option.parameter_name)
    return {field: next(iter(given)) if len(given) == 1 else None for field, given in names.items()}


def flag_names(message: str, command: Callable) -> str:
    """``message`` with each config field or parameter of ``command`` it names written as the flag a user
    types (``train_samples`` -> ``--train-samples``): snake_case words anywhere, a plain word leading
    ``... must``. A field several options set stays as it is."""
    known: dict[str, str | None] = {name: name for name in inspect.signature(command).parameters}
    known |= getattr(command, "option_names", {})

    def flag(match: re.Match) -> str:
        name = match.group(0)
        return f"--{known[name].replace('_', '-')}" if known.get(name) else name

    return FIELD_WORD.sub(flag, message)


def with_options(*groups: list[Option]) -> Callable:
    """Give a command the options of ``groups`` besides its own parameters; it receives them as its
    first argument, a dict keyed by option name."""

    def decorate(command: Callable) -> Callable:
        hints = typing.get_type_hints(command, include_extras=True)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation), kind=inspect.Parameter.KEYWORD_ONLY)
            for p in list(inspect.signature(command).parameters.values())[1:]
        ]
        flags = option_names(groups)
        generated = [option for group in groups for option in group]
        generated = [o.parameter(flags) for o in sorted(generated, key=lambda o: PANELS.index(o.panel))]
        names = [p.name for p in generated]
        clash = {p.name for p in own} & set(names)
        if clash or len(set(names)) != len(names):
            raise TypeError(f"options given twice: {sorted(clash) or names}")

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in names}
            return command(given, **kwargs)

        parameters = generated + own
        wrapper.__signature__ = inspect.Signature(parameters)
        wrapper.option_names = flags
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        del wrapper.__wrapped__  # typer reads the signature above, not the command's
        return wrapper

    return decorate
