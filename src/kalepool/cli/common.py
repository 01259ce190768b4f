"""What every ``kalepool`` command shares: the one error handler, options, output helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

__all__ = [
    "Commands",
    "ConfigOption",
    "JsonOption",
    "error_line",
    "exit_code",
    "fail",
    "print_json",
    "setting_help",
    "setting_option",
]


def error_line(exc: BaseException) -> str:
    """One line saying what went wrong (a settings error names each field)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        text = f"invalid {exc.title.lower()}: " + "; ".join(problems)
    elif isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.filename}: {exc.strerror}"
    elif isinstance(exc, KeyboardInterrupt):
        text = "interrupted"
    else:
        text = str(exc).strip() or type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def exit_code(exc: BaseException) -> int:
    from kalepool.errors import is_usage_error

    if isinstance(exc, KeyboardInterrupt):
        return 130
    return 2 if is_usage_error(exc) else 1


class Commands(TyperGroup):
    """The root group: the one place where errors become an ``error: ...`` line."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click Context
        from kalepool.errors import KalePoolError

        try:
            return super().invoke(ctx)
        except (KalePoolError, ValueError, OSError, KeyboardInterrupt) as exc:
            typer.echo(f"error: {error_line(exc)}", err=True)
            ctx.exit(exit_code(exc))


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file (also KALEPOOL_CONFIG)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def setting_help(text: str, path: str) -> str:
    """``text`` followed by the setting an option overrides and that setting's default,
    read from the settings model (so the help cannot drift from it)."""
    from kalepool.settings import Settings

    model: Any = Settings
    *sections, name = path.split(".")
    for section in sections:
        model = type(model.model_fields[section].default)
    default = model.model_fields[name].default
    return f"{text} (setting {path})." if default is None else f"{text} (setting {path}, default {default})."


def setting_option(text: str, path: str, metavar: str) -> Any:
    """An option overriding the setting ``path`` (validated with the settings, so the
    option itself carries no range)."""
    return typer.Option(metavar=metavar, help=setting_help(text, path))


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line error and exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
