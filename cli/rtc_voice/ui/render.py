"""Pure renderables for the live call screen, built from a `View` snapshot (no I/O, no clock).

The layout never clips: every footer line (a notice, the status items, the prompt or a
question, the key hints) is wrapped and measured at the terminal's width first; the
conversation gets what is left. Narrow or short terminals get a compact layout (no boxes,
one status line, short meters) rather than losing the controls; every line drawn fits the
width, so nothing is cut at the right edge either.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.segment import Segment
from rich.text import Text

from rtc_voice.call.controls import Question, RateLimit, StatusItem
from rtc_voice.conversation import FunctionCall, Turn
from rtc_voice.eventlog import LogLine

METER_CELLS = 12
COMPACT_METER_CELLS = 4
COMPACT_WIDTH = 80  # narrower than this: the compact layout
COMPACT_HEIGHT = 20  # shorter than this: the compact layout
NOTICE_LINES = 3  # a long notice is cut to this many lines (2 in the compact layout)
KEYS = (
    ("m", "mute"),
    ("i", "interrupt"),
    ("t", "type"),
    ("l", "log"),
    ("?", "help"),
    ("q", "quit"),
)
PTT_KEY = ("space", "talk")
# the compact layout drops these hints, first to last, until the hints fit one line (the
# help, `?`, lists every key); push-to-talk, mute, type, help and quit always stay
SPARE_KEYS = ("/", "o", "↑↓", "l", "i")
HELP = """\
[bold]m[/]          mute / unmute your microphone (silence is sent, the call goes on)
[bold]i[/]          interrupt the assistant (cancel the reply, drop its queued audio)
[bold]t[/] Enter    type a message; Enter sends it, Esc cancels
[bold]space[/]      push-to-talk (--ptt): press to start your turn, again to end it
[bold]PgUp PgDn[/]  scroll the conversation; ↑ ↓ a line; Home End: oldest, newest
[bold]y[/] [bold]n[/]        run / decline the tool call the footer asks about
[bold]l[/]          event log: ↑ ↓ pick an entry (the log holds still), o its JSON,
           / filter by a word, Esc let go
[bold]?[/]          this help
[bold]q[/]          hang up and quit (Ctrl-C too; twice forces it)"""
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
    microphone: bool = True  # False with `--input none`: "no microphone" instead of a meter
    speaker_dbfs: float = -120.0
    speaker: bool = True  # False with `--output none`: "no speaker" instead of a meter
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
    rate_limits: Sequence[RateLimit] = ()
    status_items: Sequence[StatusItem] = ()
    question: Question | None = None
    alert: str = ""
    alert_error: bool = False
    scroll: int = 0  # conversation lines scrolled back from the newest
    log_selected: int | None = None  # index into `log` of the picked entry (log open)
    log_detail: str | None = None  # the picked entry's full JSON, when opened
    log_filter: str | None = None  # the log shows only lines containing it
    filtering: bool = False  # the filter is being typed
    # items other parts of the call fill in (issue 10's network health, issue 8's echo
    # canceller); the layout places them with the status like any StatusItem
    network: str = ""  # one compact status item: rtt, loss, turn latency, reconnects
    network_bad: bool = False
    echo_cancelling: bool = False
    echo_removed_db: float | None = None  # while the assistant is heard; None = not measured


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(max(0, seconds)), 60)
    return f"{minutes:02d}:{secs:02d}"


def meter_cells(dbfs: float, cells: int) -> int:
    """How many of a meter's `cells` a level fills: -60 dBFS none, 0 dBFS all."""
    return max(0, min(cells, round((dbfs + 60) / 60 * cells)))


def meter_style(dbfs: float) -> str:
    return "red" if dbfs > -6 else "yellow" if dbfs > -20 else "green"


def meter(dbfs: float, cells: int = METER_CELLS) -> Text:
    """A level bar from -60 dBFS (empty) to 0 dBFS (full)."""
    filled = meter_cells(dbfs, cells)
    return Text("▮" * filled, style=meter_style(dbfs)) + Text("▯" * (cells - filled), style="dim")


def _meter_key(dbfs: float) -> tuple[int, int, str]:
    return meter_cells(dbfs, METER_CELLS), meter_cells(dbfs, COMPACT_METER_CELLS), meter_style(dbfs)


def shown(view: View) -> tuple[View, tuple[object, ...]]:
    """What a frame of `view` shows, in two parts: everything but the level meters (`view` with
    each continuous figure replaced by what is drawn of it: whole seconds, whole dB, the log
    only when it is open) and the meters (cells filled, colour). Two views whose parts are
    equal draw the same screen at the same size, so the presenter redraws only when a part
    changed (and the meters, which move all the time while audio flows, at a lower rate)."""
    connected = view.phase == "connected"
    echo_shown = (
        view.echo_cancelling and view.speaking == "assistant" and view.echo_removed_db is not None
    )
    rest = dataclasses.replace(
        view,
        elapsed_s=float(int(max(0.0, view.elapsed_s))) if connected else 0.0,
        left_s=(
            float(int(max(0.0, view.left_s))) if connected and view.left_s is not None else None
        ),
        mic_dbfs=0.0,
        speaker_dbfs=0.0,
        echo_removed_db=(
            float(f"{max(0.0, view.echo_removed_db or 0.0):.0f}") if echo_shown else None
        ),
        log=view.log if view.show_log else (),
    )
    return rest, (_meter_key(view.mic_dbfs), _meter_key(view.speaker_dbfs))


_MEASURE = Console(file=io.StringIO(), width=200, color_system=None, legacy_windows=False)


def wrap(text: Text, width: int) -> list[Text]:
    """`text` as the lines it takes at `width` columns (never fewer than one)."""
    lines = list(text.wrap(_MEASURE, max(1, width)))
    return lines or [Text("")]


def fit(text: Text, width: int) -> Text:
    """`text` on one line of at most `width` columns (an ellipsis where it was cut)."""
    if text.cell_len <= width:
        return text
    out = text.copy()
    out.truncate(max(1, width), overflow="ellipsis")
    return out


def flow(items: Sequence[Text], width: int, sep: str = "  ") -> list[Text]:
    """Items side by side, moving to a new line where the next one would not fit; an item is
    never split (one wider than the line is shortened with an ellipsis)."""
    lines: list[Text] = []
    current: Text | None = None
    for item in items:
        item = fit(item, width)
        if current is not None and current.cell_len + len(sep) + item.cell_len <= width:
            current.append(sep)
            current.append_text(item)
            continue
        if current is not None:
            lines.append(current)
        current = item.copy()
    if current is not None:
        lines.append(current)
    return lines


def header(view: View, width: int = 200) -> Text:
    phase_style = {"connected": "bold green", "ending": "yellow", "ended": "dim"}.get(
        view.phase, "yellow"
    )
    parts: list[tuple[str, str]] = [(view.phase, phase_style)]
    if view.phase == "connected":
        parts.append((clock(view.elapsed_s), ""))
        if view.left_s is not None:
            parts.append((f"{clock(view.left_s)} left", "red" if view.left_s < 120 else "dim"))

    phase = Text(" · ").join(Text(chunk, style) for chunk, style in parts)
    full = Text.assemble(
        ("rtc-voice ", "bold"),
        (view.model or "…", "cyan"),
        " · ",
        (view.voice or "…", "cyan"),
        " · ",
        phase,
    )
    if full.cell_len <= width:
        return full
    short = Text.assemble((view.model or "…", "cyan"), " · ", phase)
    if short.cell_len <= width:
        return short
    return fit(Text.assemble(phase, " · ", (view.model or "…", "cyan")), width)  # time first


def _tool_note(call: FunctionCall) -> str:
    if call.approved_by is None:
        return ""
    took = f"{call.duration_s:.1f} s" if call.duration_s else ""
    who = "" if call.approved_by == "not needed" else f"approval: {call.approved_by}"
    note = ", ".join(part for part in (took, who) if part)
    return f"  ({note})" if note else ""


def turn_parts(turn: Turn) -> tuple[Text | None, Text]:
    """A turn's heading (who, when; None for a function call) and its words."""
    if isinstance(turn, FunctionCall):
        result = turn.output if turn.output is not None else "…"
        return None, Text.assemble(
            ("ƒ ", "magenta"),
            (f"{turn.name}", "bold magenta"),
            ("" if turn.kind == "mcp_list_tools" else f"({turn.arguments})", "magenta"),
            " → ",
            (result, "dim"),
            (_tool_note(turn), "dim italic"),
        )
    if turn.role == "user":
        label = Text("you" + (" (typed)" if turn.typed else ""), style="bold blue")
        body = turn.text or (
            "…" if turn.awaiting_transcript or turn.status == "in_progress" else "(no transcript)"
        )
    else:
        label = Text("assistant", style="bold green")
        body = turn.text or "…"
    when = datetime.fromtimestamp(turn.started_at).strftime("%H:%M:%S") if turn.started_at else ""
    words = Text(body.rstrip())
    if turn.status == "interrupted":
        words.append(" ⟂ interrupted", style="yellow")
    elif turn.status == "failed":
        words.append(" ✗ failed", style="red")
    elif turn.status == "in_progress" and turn.role == "assistant":
        words.append(" ▌", style="green")
    return Text.assemble(label, " ", (when, "dim")), words


def turn_text(turn: Turn) -> Text:
    head, words = turn_parts(turn)
    return Text.assemble("  ", words) if head is None else Text.assemble(head, "\n  ", words)


_WRAP_CACHE_SIZE = 1024
_wrapped: dict[tuple[object, ...], list[Text]] = {}


def _turn_key(turn: Turn, width: int) -> tuple[object, ...]:
    """What a turn's drawing depends on (cheaper than `dataclasses.astuple`, which deep-copies)."""
    if isinstance(turn, FunctionCall):
        return ("f", turn.item_id, turn.name, turn.arguments, turn.output, turn.status, width)
    return (
        "m",
        turn.item_id,
        turn.role,
        turn.text,
        turn.status,
        turn.started_at,
        turn.typed,
        turn.awaiting_transcript,
        width,
    )


def wrapped_turn(turn: Turn, width: int) -> list[Text]:
    """`turn_text(turn)` wrapped to `width` columns. Finished turns never change, so each is
    wrapped once per width (what keeps a 200-turn screen cheap to draw)."""
    key = _turn_key(turn, width)
    lines = _wrapped.get(key)
    if lines is None:
        if len(_wrapped) >= _WRAP_CACHE_SIZE:
            _wrapped.clear()
        head, words = turn_parts(turn)
        lines = wrap(head, width) if head is not None else []
        for line in wrap(words, max(1, width - 2)):  # the words indented under their speaker
            line.rstrip()
            lines.append(Text("  ") + line)
        _wrapped[key] = lines
    return lines


EMPTY = "Say something, or press t to type."
EMPTY_NO_MIC = "No microphone (--input none): press t to type a message."


def conversation_lines(
    turns: Sequence[Turn], width: int, height: int, scroll: int = 0, empty: str = EMPTY
) -> tuple[list[Text], int]:
    """The lines of `height` rows that end `scroll` lines above the newest, and how far back
    the view really is (a scroll past the first turn stops there). `empty`: what an empty
    conversation shows."""
    width = max(10, width)
    if not turns:
        return wrap(Text(empty, style="dim"), width)[:height], 0
    need = height + max(0, scroll)
    lines: list[Text] = []
    for turn in reversed(turns):
        lines = [*wrapped_turn(turn, width), *lines]
        if len(lines) >= need:
            break
    scroll = max(0, min(scroll, len(lines) - height))
    end = len(lines) - scroll
    return lines[max(0, end - height) : end], scroll


def conversation(turns: Sequence[Turn], width: int, height: int, scroll: int = 0) -> Text:
    """The newest turns that fit in `height` lines of `width` columns."""
    lines, _ = conversation_lines(turns, width, height, scroll)
    return Text("\n").join(lines) if lines else Text("")


def _tail_at_word(text: str, room: int) -> str:
    """The end of `text` in at most `room` characters, starting at a word (not mid-word)."""
    text = " ".join(text.split())
    if len(text) <= room:
        return text
    tail = text[-(room - 1) :]
    space = tail.find(" ")
    if 0 <= space < len(tail) - 1:
        tail = tail[space + 1 :]
    return "…" + tail


def log_row(line: LogLine, width: int, selected: bool = False) -> Text:
    arrow = {"client": ("→", "cyan"), "local": ("·", "yellow")}.get(line.direction, ("←", "green"))
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
    )
    room = width - row.cell_len
    if line.text and room > 8:  # folded deltas: their newest words, from a word's start
        row.append(repr(_tail_at_word(line.text, room - 2)))
    else:
        row.append(line.summary)
    row = fit(row, width)
    if selected:
        row.stylize("reverse")
    return row


def log_panel(
    log: Sequence[LogLine], height: int, width: int = 200, selected: int | None = None
) -> Text:
    if not log:
        return Text("no events yet", style="dim")
    end = len(log)
    if selected is not None:
        end = max(min(len(log), selected + 1 + height // 2), min(len(log), height))
    start = max(0, end - height)
    rows = [log_row(log[i], width, i == selected) for i in range(start, end)]
    return Text("\n").join(rows)


def log_detail_lines(detail: str, width: int, height: int) -> list[Text]:
    """The event's JSON wrapped to `width`; cut to `height` lines, the last one then says how
    many lines did not fit."""
    lines: list[Text] = []
    for raw in detail.splitlines():
        lines.extend(wrap(Text(raw), width))
    if len(lines) <= height:
        return lines
    if height < 2:
        return lines[:height]
    more = len(lines) - (height - 1)
    return [*lines[: height - 1], fit(Text(f"… {more} more lines", "dim"), width)]


def pretty_json(event: object) -> str:
    return json.dumps(event, indent=2, ensure_ascii=False, default=str)


def _rate_limits(limits: Sequence[RateLimit], compact: bool) -> str:
    def amount(n: int) -> str:
        return f"{n / 1000:.0f}k" if n >= 10_000 else str(n)

    names = {"requests": "req", "tokens": "tok"}
    parts = [f"{amount(r.remaining)} {names.get(r.name, r.name)}" for r in limits]
    return ("" if compact else "limits ") + " · ".join(parts) + " left"


def status_items(view: View, compact: bool) -> list[tuple[int, Text]]:
    """The status area's items with their priority (kept longest: highest)."""
    speaking_text, speaking_style = {
        "you": ("you are speaking", "bold blue"),
        "assistant": ("assistant speaking", "bold green"),
    }.get(view.speaking, ("listening", "dim"))
    cells = COMPACT_METER_CELLS if compact else METER_CELLS
    items: list[tuple[int, Text]] = []
    if view.microphone:
        mic = Text("mic ") + meter(view.mic_dbfs, cells)
    else:
        mic = Text("no mic" if compact else "no microphone", "dim")
    if view.muted:
        items.append((90, Text("MUTED", "bold red")))
    items.append((50, mic))
    if view.speaker:
        items.append((40, Text("spk ") + meter(view.speaker_dbfs, cells)))
    else:
        items.append((40, Text("no spk" if compact else "no speaker", "dim")))
    short = {"you": "you", "assistant": "assistant", "listening": "listening"}
    items.append((80, Text(short.get(view.speaking, view.speaking) if compact else speaking_text)))
    items[-1][1].stylize(speaking_style)
    if view.ptt:
        label = (
            ("PTT on" if compact else "PTT: talking")
            if view.ptt_active
            else ("PTT" if compact else "PTT: press space")
        )
        items.append((85, Text(label, "bold blue" if view.ptt_active else "dim")))
    cost = f"${view.cost_usd:.4f}" if view.cost_usd is not None else ""
    if compact:
        if cost:
            items.append((20, Text(cost, "dim")))
    else:
        tokens = f"tokens {view.tokens_in}↑ {view.tokens_out}↓" + (f" · {cost}" if cost else "")
        items.append((20, Text(tokens, "dim")))
    if view.rate_limits:
        items.append((15, Text(_rate_limits(view.rate_limits, compact), "dim")))
    if view.network:
        style = "bold red" if view.network_bad else "dim"
        network = view.network if not compact else _first_parts(view.network, 24)
        items.append((30, Text(network, style)))
    if view.echo_cancelling:
        echo = "echo cancelling" if not compact else "AEC"
        if view.speaking == "assistant" and view.echo_removed_db is not None:
            echo += f" · {max(0.0, view.echo_removed_db):.0f} dB removed"
        items.append((25, Text(echo, "cyan")))
    for extra in view.status_items:
        label = extra.short if compact else extra.text
        if label:
            items.append((extra.priority, Text(label, extra.style)))
    return items


def _first_parts(text: str, room: int) -> str:
    """The leading ` · `-separated parts of `text` that fit in `room` characters (at least
    the first, cut): `rtt 1 ms · jitter 0 ms`, never `rtt 1 ms · jitter 0 ms ·`."""
    parts = text.split(" · ")
    kept = parts[0][:room]
    for part in parts[1:]:
        if len(kept) + 3 + len(part) > room:
            break
        kept += " · " + part
    return kept


def status_lines(view: View, width: int, compact: bool) -> list[Text]:
    """The status area: wrapped by items in the full layout, one line in the compact one
    (items of the lowest priority left out until it fits)."""
    items = status_items(view, compact)
    if not compact:
        return flow([t for _, t in items], width)
    while len(items) > 1:
        lines = flow([t for _, t in items], width, sep=" ")
        if len(lines) == 1:
            return lines
        lowest = min(range(len(items)), key=lambda n: items[n][0])
        del items[lowest]
    return flow([t for _, t in items], width, sep=" ")


def key_hints(view: View, width: int, compact: bool = False) -> list[Text]:
    """The key hints that work now, as few lines as the width allows; in the compact layout,
    one line where leaving out the spare hints makes them fit (`? help` then says `? more`)."""
    if view.question is not None:
        keys = [(key, label) for key, label, _ in view.question.answers]
    elif view.typing is not None:
        keys = [("Enter", "send"), ("Esc", "cancel")]
    elif view.filtering:
        keys = [("Enter", "keep the filter"), ("Esc", "clear it")]
    else:
        keys = [*([PTT_KEY] if view.ptt else []), *KEYS]
        if view.ptt and view.ptt_active:  # what the key does now
            keys[0] = ("space", "end turn")
        if view.muted:
            keys[keys.index(("m", "mute"))] = ("m", "unmute")
        elif not view.microphone:  # nothing to mute
            keys.remove(("m", "mute"))
        if view.show_log:
            keys.insert(-2, ("↑↓", "pick"))
            keys.insert(-2, ("o", "JSON"))
            keys.insert(-2, ("/", "filter"))
    lines = _hint_lines(keys, width)
    spare = [key for key in SPARE_KEYS if any(k == key for k, _ in keys)]
    while compact and len(lines) > 1 and spare:
        drop = spare.pop(0)
        keys = [("?", "more") if k == "?" else (k, label) for k, label in keys if k != drop]
        lines = _hint_lines(keys, width)
    return lines


def _hint_lines(keys: Sequence[tuple[str, str]], width: int) -> list[Text]:
    items = [Text.assemble((k, "bold"), " ", (label, "dim")) for k, label in keys]
    return flow(items, width, sep=" · ")


def prompt_line(view: View, width: int) -> list[Text]:
    """The typing prompt or a standing question: always one line or two, never cut."""
    if view.question is not None:
        return wrap(Text(view.question.text, "bold yellow"), width)[-2:]
    if view.filtering:
        label, typing = "filter> ", view.log_filter or ""
    elif view.typing is not None:
        label, typing = "message> ", view.typing
    else:
        return []
    label = label if width >= 30 else "> "
    room = max(2, width - len(label) - 1)
    typed = typing if len(typing) <= room else "…" + typing[-(room - 1) :]
    return [Text.assemble((label, "bold"), typed, ("▌", "blink"))]


def notice_lines(view: View, width: int, compact: bool) -> list[Text]:
    out: list[Text] = []
    limit = 2 if compact else NOTICE_LINES
    for text, error in ((view.alert, view.alert_error), (view.notice, view.notice_error)):
        if not text:
            continue
        lines = wrap(Text(text, "bold red" if error else "yellow"), width)
        if len(lines) > limit:  # cut: the last line kept ends with an ellipsis, at a word
            last = lines[limit - 1].copy()
            last.rstrip()
            if last.cell_len > width - 2:
                last.truncate(max(1, width - 2))
                space = last.plain.rfind(" ")
                if space > 0:
                    last = last[:space]
            lines = [*lines[: limit - 1], last + Text(" …", last.style)]
        out.extend(lines)
    return out


SIDE_LINES = 8  # the log or help panel's inner height, when there is room
MIN_BODY_LINES = 3  # the conversation lines the help or JSON panel leaves when it takes more


class BoxRow:
    """One row inside a box: `│ line … │`, written as segments (no Text is built per frame)."""

    def __init__(self, line: Text, inner: int, style: str) -> None:
        self.line = line
        self.inner = inner
        self.style = style

    @property
    def cell_len(self) -> int:
        return self.inner + 4

    @property
    def plain(self) -> str:
        return f"│ {self.line.plain.ljust(self.inner)} │"

    def render(self, console: Console) -> list[Segment]:
        style = console.get_style(self.style)
        pad = " " * (self.inner - self.line.cell_len)
        return [
            Segment("│ ", style),
            *_segments(self.line, console),
            Segment(pad + " "),
            Segment("│", style),
        ]


_SEGMENTS_CACHE_SIZE = 2048
_segment_cache: dict[int, tuple[Text, list[Segment]]] = {}


def _segments(text: Text, console: Console) -> list[Segment]:
    """A line's segments; lines of finished turns are the same objects every frame (the wrap
    cache keeps them), so their segments are made once."""
    hit = _segment_cache.get(id(text))
    if hit is not None and hit[0] is text:
        return hit[1]
    segments = list(text.render(console))
    if len(_segment_cache) >= _SEGMENTS_CACHE_SIZE:
        _segment_cache.clear()
    _segment_cache[id(text)] = (text, segments)
    return segments


def boxed(
    lines: Sequence[Text], title: str, width: int, height: int, style: str
) -> list[Text | BoxRow]:
    """`lines` in a titled box `width` wide and `height` tall inside its border; drawn by hand
    from lines that already fit (a Rich Panel would wrap every line again, each frame)."""
    inner = max(1, width - 4)
    label = fit(Text(title), max(1, width - 6))
    top = Text("╭─ ", style)
    top.append_text(label)
    top.append(" " + "─" * max(0, width - 5 - label.cell_len) + "╮", style)
    out: list[Text | BoxRow] = [fit(top, width)]
    for n in range(height):
        out.append(BoxRow(fit(lines[n], inner) if n < len(lines) else Text(""), inner, style))
    out.append(Text("╰" + "─" * max(0, width - 2) + "╯", style))
    return out


def _titled(title: str, style: str, width: int) -> Text:
    """The compact layout's section title: a rule with the name in it."""
    text = Text(f"── {title} ", style)
    text.append("─" * max(0, width - text.cell_len), style)
    return fit(text, width)


def _side_body(view: View, width: int, lines: int) -> tuple[list[Text], str, str]:
    if view.show_help:
        return wrap(HELP_TEXT, width)[:lines], "keys", "magenta"
    if view.log_detail is not None:
        return log_detail_lines(view.log_detail, width, lines), "event (o or Esc closes)", "cyan"
    title = "event log" + (f" (filter: {view.log_filter})" if view.log_filter else "")
    return list(log_panel(view.log, lines, width, view.log_selected).split("\n")), title, "dim"


def _read_whole(view: View) -> bool:
    """The help or an event's JSON is open: read whole, not glanced at like the log."""
    return view.show_help or (view.show_log and view.log_detail is not None)


def _side_size(view: View, width: int) -> int:
    """The lines the open side panel would like: all of the help or the JSON, else the log's
    entries, up to SIDE_LINES (a log of two entries gets a box of two lines, not eight)."""
    if view.show_help:
        return len(wrap(HELP_TEXT, width))
    if view.show_log and view.log_detail is not None:
        return len(log_detail_lines(view.log_detail, width, 10**6))
    return max(1, min(SIDE_LINES, len(view.log)))


def is_compact(width: int, height: int) -> bool:
    return width < COMPACT_WIDTH or height < COMPACT_HEIGHT


def footer_lines(view: View, width: int, compact: bool, room: int) -> list[Text]:
    """Everything below the conversation, in at most `room` lines: the prompt and the key hints
    first, then the status, then the notice (cut to what is left)."""
    keys = key_hints(view, width, compact)
    prompt = prompt_line(view, width)
    status = status_lines(view, width, compact)
    notice = notice_lines(view, width, compact)
    fixed = prompt + keys
    if len(fixed) > room:  # a tiny terminal: the prompt, then as many hints as fit
        return fixed[: max(1, room)]
    status = status[: room - len(fixed)]
    notice = notice[: room - len(fixed) - len(status)]
    return [*notice, *status, *prompt, *keys]


class Rows:
    """Screen lines that already fit the width, written as they are: nothing is wrapped or
    measured again at write time (what keeps a frame cheap)."""

    def __init__(self, rows: Sequence[Text | BoxRow]) -> None:
        self.rows = rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        newline = Segment.line()
        for row in self.rows:
            yield from row.render(console) if isinstance(row, BoxRow) else _segments(row, console)
            yield newline


@dataclass(frozen=True)
class Frame:
    """One laid-out screen, and what the presenter needs to know about it."""

    renderable: RenderableType
    scroll: int  # how far back the conversation really is (a scroll past the top stops)
    body_lines: int  # the conversation's height (a page, for PgUp/PgDn)


def screen(view: View, width: int, height: int) -> RenderableType:
    """The whole screen for a terminal of `width` x `height`."""
    return compose(view, width, height).renderable


def compose(view: View, width: int, height: int) -> Frame:
    """The whole screen for a terminal of `width` x `height`: header, conversation, optional
    log or help panel, footer. The footer is measured first; the conversation gets the rest."""
    width, height = max(1, width), max(1, height)
    compact = is_compact(width, height)
    foot = footer_lines(view, width, compact, max(1, height - 1))
    top = [fit(header(view, width), width)] if len(foot) < height else []
    left = height - len(top) - len(foot)
    if not compact and left < 3 + 3 + (SIDE_LINES + 2 if view.show_log or view.show_help else 0):
        compact = True  # the boxes would leave the conversation too little: drop them
        foot = footer_lines(view, width, compact, max(1, height - 1))
        left = height - len(top) - len(foot)
    side_open = view.show_log or view.show_help
    whole = _read_whole(view)
    empty = EMPTY if view.microphone else EMPTY_NO_MIC
    side_size = _side_size(view, width - 4)
    rows: list[Text | BoxRow] = [*top]
    if compact:
        # no boxes: a title rule per section; the side panel takes up to half of what is left
        room = (left - 2) // 2
        if whole:  # help or an event's JSON: it takes what the conversation can spare
            room = max(room, left - MIN_BODY_LINES)
        side = min(side_size + 1, room) if side_open else 0
        if side_open and side < 1 and left >= 2:
            side = left - 1  # too small for both: the panel the user opened wins
        body = left - side
        scroll = 0
        if body > 0:
            lines, scroll = conversation_lines(view.turns, width, body, view.scroll, empty)
            rows.extend(fit(line, width) for line in lines)
            rows.extend(Text("") for _ in range(body - len(lines)))
        if side > 0:
            side_lines, title, style = _side_body(view, width, side - 1)
            rows.append(_titled(title, style, width))
            rows.extend(fit(line, width) for line in side_lines[: side - 1])
            rows.extend(Text("") for _ in range(side - 1 - len(side_lines[: side - 1])))
    else:
        room = max(SIDE_LINES, left // 2)
        if whole:  # help or an event's JSON: the conversation keeps MIN_BODY_LINES in its box
            room = max(room, left - 4 - MIN_BODY_LINES)
        side = min(side_size, room) + 2 if side_open else 0
        body = left - side - 2
        lines, scroll = conversation_lines(view.turns, width - 4, body, view.scroll, empty)
        title = "conversation" + (" (scrolled back: End returns)" if view.scroll else "")
        rows.extend(boxed(lines, title, width, body, "blue"))
        if side_open:
            side_lines, side_title, style = _side_body(view, width - 4, side - 2)
            rows.extend(boxed(side_lines, side_title, width, side - 2, style))
    rows.extend(foot)
    return Frame(Rows(rows), scroll, max(1, body))


INLINE_TURN_LINES = 6  # the turn in progress, at most (the tail of it)


def compose_inline(view: View, width: int, height: int) -> Rows:
    """`--ui inline`'s live region: the turns in progress (their newest lines), the log or help
    when open, a status header, the footer. Finished turns are printed above it, once."""
    width, height = max(1, width), max(2, height)
    room = max(1, height - 1)  # the terminal's last line is left for the cursor
    foot = footer_lines(view, width, width < COMPACT_WIDTH, room)
    rows: list[Text] = []
    left = room - len(foot)
    if left > 0:
        rows.append(fit(header(view, width), width))
        left -= 1
    if left > 0 and (view.show_log or view.show_help):
        side = min(_side_size(view, width), left - 1)
        if side > 0:
            side_lines, title, style = _side_body(view, width, side)
            rows = [_titled(title, style, width), *(fit(x, width) for x in side_lines), *rows]
            left -= 1 + len(side_lines)
    pending: list[Text] = []
    for turn in view.turns:
        pending.extend(wrapped_turn(turn, width))
    pending = pending[-min(INLINE_TURN_LINES, max(0, left)) :] if left > 0 else []
    return Rows([*(fit(x, width) for x in pending), *rows, *foot])
