"""Which presenter a `talk` call gets: the live screen when the terminal can draw one, plain
lines otherwise (with a note saying why, and hints that match what works there)."""

from __future__ import annotations

import os
import sys
from typing import Any

from rtc_voice.ui.plain import LINE_HELP, JsonPresenter, LinePresenter


def terminal_problem(term: str | None) -> str | None:
    """Why a terminal of type `term` cannot draw the live screen, or None when it can."""
    if not term or term in ("dumb", "unknown"):
        return f"TERM={term or '(unset)'} cannot draw the live screen"
    import curses

    try:
        curses.setupterm(term, sys.__stdout__.fileno() if sys.__stdout__ else 1)
    except (curses.error, OSError, ValueError, AttributeError):
        return f"TERM={term} is not a terminal type this system knows"
    if curses.tigetstr("cup") is None:  # cannot move the cursor: no full screen
        return f"TERM={term} cannot move the cursor"
    return None


def choose_presenter(*, ptt: bool, as_json: bool, inline: bool = False) -> Any:
    """The presenter for this process's stdin/stdout/TERM."""
    keys = sys.stdin.isatty()
    if as_json:
        return JsonPresenter(read_lines=keys)
    if not sys.stdout.isatty():
        note = f"Output is not a terminal: {LINE_HELP}." if keys else ""
        return LinePresenter(read_lines=keys, note=note)
    problem = terminal_problem(os.environ.get("TERM"))
    if problem is not None or not keys:
        why = problem or "stdin is not a terminal"
        note = f"Plain line mode ({why}): " + (LINE_HELP if keys else "Ctrl-C hangs up") + "."
        return LinePresenter(read_lines=keys, note=note)
    from rtc_voice.ui.terminal import InlinePresenter, LivePresenter

    return InlinePresenter(ptt=ptt) if inline else LivePresenter(ptt=ptt)
