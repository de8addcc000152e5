"""Command-line options built from the config dataclasses, so that a setting has one home.

Each option takes its type and default from a config field and its help from the field's entry in
the config class's docstring (``Attributes:``), so the command line cannot drift from the library.
"""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, fields
from typing import Annotated, Any

import typer

RECIPE = " [default: the task's recipe, see 'skeleton tasks']"


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

    @property
    def parameter_name(self) -> str:
        return self.name or self.field

    def parameter(self) -> inspect.Parameter:
        spec = next(f for f in fields(self.cls) if f.name == self.field)
        kind = typing.get_type_hints(self.cls)[self.field]
        help_text = self.help_prefix + field_help(self.cls).get(self.field, "")
        if self.recipe:
            kind, default, help_text = kind | None, None, help_text + RECIPE
        else:
            default = spec.default if spec.default is not MISSING else spec.default_factory()
        annotation = Annotated[kind, typer.Option(help=help_text)]
        return inspect.Parameter(
            self.parameter_name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
        )


def options(cls: type, names: Iterable[str], **renamed: str) -> list[Option]:
    """Options for ``names`` of ``cls``'s fields; ``renamed`` maps a field to its command-line name."""
    return [Option(cls, name, renamed.get(name, "")) for name in names]


def with_options(*groups: list[Option]) -> Callable:
    """Give a command the options of ``groups`` besides its own parameters; it receives them as its
    first argument, a dict keyed by option name."""

    def decorate(command: Callable) -> Callable:
        hints = typing.get_type_hints(command, include_extras=True)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation), kind=inspect.Parameter.KEYWORD_ONLY)
            for p in list(inspect.signature(command).parameters.values())[1:]
        ]
        generated = [option.parameter() for group in groups for option in group]
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
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        del wrapper.__wrapped__  # typer reads the signature above, not the command's
        return wrapper

    return decorate
