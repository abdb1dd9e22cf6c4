"""Pure renderables for the live call screen, built from a `View` snapshot (no I/O, no clock)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.text import Text

from rtc_voice.conversation import FunctionCall, Turn
from rtc_voice.eventlog import LogLine

METER_CELLS = 12
KEYS = "m mute · i interrupt · t type · l log · ? help · q quit"
PTT_KEYS = "space talk · m mute · i interrupt · t type · l log · ? help · q quit"
HELP = """\
[bold]m[/]        mute / unmute your microphone (silence is sent, the call goes on)
[bold]i[/]        interrupt the assistant (cancel the reply, drop its queued audio)
[bold]t[/] Enter  type a message; Enter sends it, Esc cancels
[bold]space[/]    push-to-talk (with --ptt): press to start your turn, again to end it
[bold]l[/]        show or hide the event log (client → and server ← events)
[bold]?[/]        this help
[bold]q[/]        hang up and quit (Ctrl-C too; twice forces it)"""
HELP_TEXT = Text.from_markup(HELP)


@dataclass
class View:
    model: str = ""
    voice: str = ""
    phase: str = "starting"
    elapsed_s: float = 0.0
    left_s: float | None = None
    turns: Sequence[Turn] = ()
    log: Sequence[LogLine] = ()
    show_log: bool = False
    show_help: bool = False
    mic_dbfs: float = -120.0
    speaker_dbfs: float = -120.0
    muted: bool = False
    speaking: str = "listening"
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None
    typing: str | None = None  # the message being typed, when in typing mode
    ptt: bool = False
    ptt_active: bool = False
    notice: str = ""
    notice_error: bool = False


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(max(0, seconds)), 60)
    return f"{minutes:02d}:{secs:02d}"


def meter(dbfs: float, cells: int = METER_CELLS) -> Text:
    """A level bar from -60 dBFS (empty) to 0 dBFS (full)."""
    filled = max(0, min(cells, round((dbfs + 60) / 60 * cells)))
    style = "red" if dbfs > -6 else "yellow" if dbfs > -20 else "green"
    return Text("▮" * filled, style=style) + Text("▯" * (cells - filled), style="dim")


def header(view: View) -> Text:
    phase_style = {"connected": "bold green", "ending": "yellow", "ended": "dim"}.get(
        view.phase, "yellow"
    )
    text = Text.assemble(
        ("rtc-voice ", "bold"),
        (view.model or "…", "cyan"),
        " · ",
        (view.voice or "…", "cyan"),
        " · ",
        (view.phase, phase_style),
    )
    if view.phase == "connected":
        text.append(f" · {clock(view.elapsed_s)}")
        if view.left_s is not None:
            text.append(
                f" · {clock(view.left_s)} left", style="red" if view.left_s < 120 else "dim"
            )
    return text


def turn_text(turn: Turn) -> Text:
    if isinstance(turn, FunctionCall):
        result = turn.output if turn.output is not None else "…"
        return Text.assemble(
            ("  ƒ ", "magenta"),
            (f"{turn.name}", "bold magenta"),
            (f"({turn.arguments})", "magenta"),
            " → ",
            (result, "dim"),
        )
    if turn.role == "user":
        label = Text("you" + (" (typed)" if turn.typed else ""), style="bold blue")
        body = turn.text or (
            "…" if turn.awaiting_transcript or turn.status == "in_progress" else "(no transcript)"
        )
    else:
        label = Text("assistant", style="bold green")
        body = turn.text or "…"
    line = Text.assemble(
        label,
        " ",
        (
            datetime.fromtimestamp(turn.started_at).strftime("%H:%M:%S") if turn.started_at else "",
            "dim",
        ),
        "\n  ",
        body,
    )
    if turn.status == "interrupted":
        line.append(" ⟂ interrupted", style="yellow")
    elif turn.status == "failed":
        line.append(" ✗ failed", style="red")
    elif turn.status == "in_progress" and turn.role == "assistant":
        line.append(" ▌", style="green")
    return line


_WRAP_CACHE_SIZE = 512
_wrapped: dict[tuple[object, ...], list[Text]] = {}


def wrapped_turn(turn: Turn, width: int) -> list[Text]:
    """`turn_text(turn)` wrapped to `width` columns. Finished turns never change, so each is
    wrapped once per width (what keeps a 200-turn screen cheap to draw)."""
    key = (type(turn).__name__, *dataclasses.astuple(turn), width)
    lines = _wrapped.get(key)
    if lines is None:
        if len(_wrapped) >= _WRAP_CACHE_SIZE:
            _wrapped.clear()
        console = Console(width=width, file=None, color_system=None)
        lines = _wrapped[key] = list(turn_text(turn).wrap(console, width))
    return lines


def conversation(turns: Sequence[Turn], width: int, height: int) -> Text:
    """The newest turns that fit in `height` lines of `width` columns."""
    lines: list[Text] = []
    for turn in reversed(turns):
        wrapped = wrapped_turn(turn, max(20, width))
        if lines and len(lines) + len(wrapped) > height:
            break
        lines = [*wrapped, *lines]
    if not turns:
        lines = [Text("Say something, or press t to type.", style="dim")]
    return Text("\n").join(lines[-height:]) if lines else Text("")


def log_panel(log: Sequence[LogLine], height: int, width: int = 200) -> Text:
    rows: list[Text] = []
    for line in log[-height:]:
        arrow = ("→", "cyan") if line.direction == "client" else ("←", "green")
        stamp = datetime.fromtimestamp(line.at).strftime("%H:%M:%S.%f")[:-3]
        count = f" x{line.count}" if line.count > 1 else ""
        row = Text.assemble(
            (stamp, "dim"),
            " ",
            arrow,
            " ",
            (line.type, "bold red" if line.error else "bold"),
            (count, "dim"),
            " ",
            line.summary,
        )
        row.truncate(max(20, width), overflow="ellipsis")
        row.no_wrap = True
        rows.append(row)
    return Text("\n").join(rows) if rows else Text("no events yet", style="dim")


def footer(view: View) -> Group:
    speaking = {
        "you": ("you are speaking", "bold blue"),
        "assistant": ("assistant speaking", "bold green"),
    }.get(view.speaking, ("listening", "dim"))
    status = Text.assemble(
        "mic ",
        meter(view.mic_dbfs),
        " ",
        ("MUTED " if view.muted else "", "bold red on default"),
        "  spk ",
        meter(view.speaker_dbfs),
        "  ",
        speaking,
    )
    if view.ptt:
        status.append(
            "  PTT: talking" if view.ptt_active else "  PTT: press space",
            style="bold blue" if view.ptt_active else "dim",
        )
    cost = f" · ${view.cost_usd:.4f}" if view.cost_usd is not None else ""
    status.append(f"  tokens {view.tokens_in}↑ {view.tokens_out}↓{cost}", style="dim")
    if view.typing is not None:
        prompt = Text.assemble(
            ("message> ", "bold"),
            view.typing,
            ("▌", "blink"),
            ("   Enter send · Esc cancel", "dim"),
        )
    else:
        prompt = Text(PTT_KEYS if view.ptt else KEYS, style="dim")
    parts: list[RenderableType] = [status, prompt]
    if view.notice:
        parts.insert(0, Text(view.notice, style="bold red" if view.notice_error else "yellow"))
    return Group(*parts)


SIDE_LINES = 8  # the log or help panel's inner height


def _box(body: RenderableType, title: str, lines: int, style: str) -> Panel:
    """A titled panel `lines` tall inside its border."""
    return Panel(body, title=title, title_align="left", height=lines + 2, border_style=style)


def screen(view: View, width: int, height: int) -> RenderableType:
    """The whole screen for a terminal of `width` x `height`: header, conversation, optional
    log or help panel, footer. The conversation gets whatever the others leave."""
    side: Panel | None = None
    if view.show_help:
        side = _box(HELP_TEXT, "keys", SIDE_LINES, "magenta")
    elif view.show_log:
        side = _box(log_panel(view.log, SIDE_LINES, width - 4), "event log", SIDE_LINES, "dim")
    header_lines, footer_lines = 1, 2 + (1 if view.notice else 0)
    side_lines = SIDE_LINES + 2 if side is not None else 0
    body = max(3, height - header_lines - footer_lines - side_lines - 2)
    parts: list[RenderableType] = [
        header(view),
        _box(conversation(view.turns, width - 4, body), "conversation", body, "blue"),
    ]
    if side is not None:
        parts.append(side)
    parts.append(footer(view))
    return Group(*parts)
