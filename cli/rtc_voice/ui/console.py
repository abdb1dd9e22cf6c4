"""The process's two rich consoles (stdout, stderr) and how an error or Ctrl-C is printed.

Shared by the Typer app (rtc_voice.app) and the entry point's quick path for plain listings
(rtc_voice.entry), so both print the same bytes and return the same exit codes. rich loads
when a console is first asked for, not when this module is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtc_voice.errors import ExitCode, RtcVoiceError

if TYPE_CHECKING:
    from rich.console import Console

_consoles: dict[bool, Console] = {}


def console(stderr: bool) -> Console:
    """The console for stdout or stderr, made on first use (no highlighting, soft wrap)."""
    if stderr not in _consoles:
        from rich.console import Console

        _consoles[stderr] = Console(stderr=stderr, highlight=False, soft_wrap=True)
    return _consoles[stderr]


def stdout() -> Console:
    return console(False)


def stderr() -> Console:
    return console(True)


def print_error(message: str, hint: str | None = None) -> None:
    """`Error: …` and, when there is one, `Hint: …` on stderr."""
    from rich.markup import escape

    err = stderr()
    err.print(f"[bold red]Error:[/] {escape(message)}")
    if hint:
        err.print(f"[dim]Hint:[/] {escape(hint)}")


def report(exc: RtcVoiceError | KeyboardInterrupt) -> int:
    """Print what a command ended with (an error's sentence and hint, or `Interrupted.` after
    Ctrl-C) and return the exit code it maps to."""
    if isinstance(exc, KeyboardInterrupt):
        stderr().print("[yellow]Interrupted.[/]")
        return int(ExitCode.INTERRUPTED)
    print_error(exc.message, exc.hint)
    return int(exc.exit_code)
