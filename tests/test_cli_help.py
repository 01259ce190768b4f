"""Every ``--help`` page at 80 columns: whole sentences, every option's text and default
shown in full (nothing swallowed as markup, nothing cut), paragraphs reflowed."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from kalepool.cli import app

WIDTH = 80
BOX = re.compile(r"[│╭╮╰╯─]")


def commands() -> list[tuple[list[str], Any]]:
    """``(path, command)`` of every command and group, the root included."""
    out: list[tuple[list[str], Any]] = []

    def walk(path: list[str], command: Any) -> None:
        out.append((path, command))
        if hasattr(command, "commands"):  # a group
            for name, sub in sorted(command.commands.items()):
                walk([*path, name], sub)

    walk([], typer.main.get_command(app))
    return out


COMMANDS = commands()


def render(path: list[str]) -> str:
    result = CliRunner().invoke(
        app, [*path, "--help"], env={"COLUMNS": str(WIDTH), "TERMINAL_WIDTH": str(WIDTH)}
    )
    assert result.exit_code == 0, result.output
    return result.output


def words(text: str) -> list[str]:
    return [w.replace("`", "").strip("*") for w in BOX.sub(" ", text).split()]


def is_subsequence(needle: list[str], haystack: list[str]) -> bool:
    it = iter(haystack)
    return all(any(w == h for h in it) for w in needle)


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "kalepool" for p, _ in COMMANDS])
def test_help_fits_and_says_everything(path: list[str], command: Any) -> None:
    page = render(path)
    lines = page.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    assert "…" not in page, f"text cut off:\n{page}"
    shown = words(page)
    for param in command.params:
        text = getattr(param, "help", None)
        if text:
            assert is_subsequence(words(text), shown), f"{param.name}: {text!r} not shown whole:\n{page}"
    # the description: each paragraph whole and reflowed (a line ends only where the
    # next word would not fit)
    body = page.split("Usage:", 1)[1].splitlines()[1:]
    description: list[str] = []
    for line in body:
        if line.lstrip().startswith("╭"):
            break
        description.append(line.rstrip())
    for line, following in itertools.pairwise(description):
        if line.strip() and following.strip():
            assert len(line) + 1 + len(following.split()[0]) > WIDTH - 2, (
                f"a sentence breaks early after {line.strip()!r}:\n{page}"
            )
    if command.help:
        assert is_subsequence(words(command.help.split("\f")[0]), words("\n".join(description)))


def test_workers_help_names_every_worker() -> None:
    page = " ".join(words(render(["backend", "workers"])))
    for worker in ("auto-harvester", "reconciler", "payouts"):
        assert worker in page


def test_defaults_from_the_settings_are_shown() -> None:
    page = " ".join(words(render(["devnet"])))
    assert "(setting devnet.host, default 127.0.0.1)." in page
    assert "(setting devnet.port, default 8000)." in page
