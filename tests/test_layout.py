"""The call screen at every common terminal size, read back through a terminal emulator (pyte):
whatever is on, the key hints and the typing prompt stay on the screen and no line is cut."""

from __future__ import annotations

import dataclasses
from io import StringIO

import pyte
import pytest
from rich.console import Console

from rtc_voice.call.controls import HangUp, Question, RateLimit, StatusItem
from rtc_voice.conversation import Message, Turn
from rtc_voice.eventlog import LogLine
from rtc_voice.ui.render import (
    HELP_TEXT,
    Rows,
    View,
    compose,
    compose_inline,
    footer_lines,
    is_compact,
    key_hints,
    pretty_json,
    status_lines,
)

SIZES = [(200, 60), (120, 40), (80, 24), (60, 20), (40, 12)]
LONG_NOTICE = (
    "The microphone has delivered only silence for 4 s: check the input device "
    "(`rtc-voice devices`) and that this terminal may use the microphone; if it still "
    "stays silent, pick another one with --input and try again. END-OF-NOTICE"
)


def long_turns(count: int = 12) -> list[Turn]:
    turns: list[Turn] = []
    for n in range(count):
        words = " ".join(f"word{n}x{k}" for k in range(30))
        turns.append(
            Message(f"u{n}", "user", text=f"question {n}", status="completed", started_at=1e9)
        )
        turns.append(Message(f"a{n}", "assistant", text=words, status="completed", started_at=1e9))
    turns.append(Message("last", "assistant", text="the newest words LASTWORD", started_at=1e9))
    return turns


def log_lines() -> list[LogLine]:
    return [
        LogLine(
            1e9,
            "server",
            "response.output_audio_transcript.delta",
            "x",
            count=40,
            text="a long answer that keeps going and going " * 5,
        ),
        LogLine(1e9, "client", "response.create", ""),
        LogLine(1e9, "server", "error", "unknown_parameter: bad", error=True),
    ]


def busy_view(**changes: object) -> View:
    """Everything on at once: long notice, long turns, MUTED, --ptt, assistant speaking."""
    view = View(
        model="gpt-realtime",
        voice="marin",
        phase="connected",
        elapsed_s=83,
        left_s=7,
        turns=long_turns(),
        log=log_lines(),
        mic_dbfs=-30,
        speaker_dbfs=-12,
        muted=True,
        speaking="assistant",
        tokens_in=123456,
        tokens_out=65432,
        cost_usd=1.2345,
        ptt=True,
        notice=LONG_NOTICE,
        notice_error=True,
        rate_limits=(RateLimit("requests", 4999, 5000), RateLimit("tokens", 39000, 40000)),
    )
    return dataclasses.replace(view, **changes)


def emulate(view: View, width: int, height: int) -> list[str]:
    """The screen a `width` x `height` terminal shows after drawing this frame."""
    console = Console(
        file=StringIO(),
        width=width,
        height=height,
        force_terminal=True,
        color_system="standard",
        legacy_windows=False,
    )
    console.print(compose(view, width, height).renderable, end="")
    output = console.file.getvalue()  # type: ignore[attr-defined]
    output = output.removesuffix("\n")  # the last line's newline would scroll the screen
    assert output.count("\n") < height, "more lines than the terminal has"
    term = pyte.Screen(width, height)
    pyte.Stream(term).feed(output.replace("\n", "\r\n"))
    return [line.rstrip() for line in term.display]


def assert_fits(view: View, width: int, height: int) -> None:
    """Every line the frame is made of fits the width; the frame has at most `height` lines."""
    rows = compose(view, width, height).renderable
    assert isinstance(rows, Rows)
    for row in rows.rows:
        assert row.cell_len <= width, f"cut at {width}: {row.plain!r}"
    assert len(rows.rows) <= height


SCENARIOS = {
    "busy": {},
    "typing": {"typing": "a rather long message that I am typing right now TYPEDEND"},
    "log": {"show_log": True},
    "help": {"show_help": True},
    "question": {
        "question": Question(
            "Allow get_time({}) to run? TOOLQUESTION",
            (("y", "allow", HangUp()), ("n", "deny", HangUp())),
        )
    },
    "items": {
        "status_items": (
            StatusItem("net rtt 42 ms · jitter 3 ms · loss 0.0%", short="net ok", priority=30),
            StatusItem("echo cancelling · 31 dB removed", short="aec", style="cyan"),
        ),
        "alert": "reconnecting (attempt 2)… the conversation will be replayed",
    },
}


@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_keys_and_prompt_always_visible_and_nothing_cut(
    scenario: str, width: int, height: int
) -> None:
    view = busy_view(**SCENARIOS[scenario])
    assert_fits(view, width, height)
    rows = emulate(view, width, height)
    text = "\n".join(rows)
    if view.question is not None:
        assert "y allow" in text and "n deny" in text
        assert "TOOLQUESTION" in text
    elif view.typing is not None:
        assert "TYPEDEND▌" in text  # the end of what is typed, with the cursor
        assert "Enter send" in text and "Esc cancel" in text
    else:
        for hint in ("space talk", "m unmute", "t type", "q quit"):  # busy_view is muted
            assert hint in text, f"{hint!r} missing at {width}x{height}:\n{text}"
    assert "MUTED" in text and "PTT" in text
    assert rows[0].startswith(("rtc-voice gpt-realtime", "gpt-realtime", "connected"))
    assert "00:07 left" in rows[0]  # the sooner of --max-duration and the session cap
    if height >= 20:
        assert "LASTWORD" in text  # the newest turn, whole
        assert "assistant" in text and "$1.2345" in text
    if not is_compact(width, height):
        assert "tokens 123456↑ 65432↓" in text and "4999 req" in text
        assert "END-OF-NOTICE" in text or "…" in text


def test_the_footer_is_measured_not_counted() -> None:
    """The old screen reserved three lines for the footer; at 80 columns the busy footer
    takes more, and the conversation shrinks instead of the keys falling off."""
    view = busy_view()
    lines = footer_lines(view, 80, compact=False, room=40)
    assert len(lines) > 3 and "q quit" in lines[-1].plain
    assert all(line.cell_len <= 80 for line in lines)


def test_a_long_notice_is_cut_with_an_ellipsis() -> None:
    lines = footer_lines(busy_view(notice=LONG_NOTICE * 3), 60, compact=True, room=20)
    notice = [line.plain for line in lines if "microphone" in line.plain or "…" in line.plain]
    assert notice and notice[-1].endswith("…") and len(notice) <= 2


def test_a_tiny_terminal_keeps_the_prompt_first() -> None:
    rows = emulate(busy_view(typing="hi there"), 30, 3)
    assert any("hi there▌" in row for row in rows)


def test_the_log_shows_words_not_halves_and_opens_json() -> None:
    view = busy_view(show_log=True, notice="")
    text = "\n".join(emulate(view, 80, 24))
    assert "…going and going" in text or "'going and going" in text or "…and going" in text
    picked = busy_view(
        show_log=True, log_selected=1, log_detail='{\n  "type": "response.create"\n}'
    )
    text = "\n".join(emulate(picked, 120, 40))
    assert '"type": "response.create"' in text


def test_scrolling_shows_older_turns_and_stops_at_the_first() -> None:
    view = busy_view(notice="")
    newest = "\n".join(emulate(view, 120, 40))
    assert "LASTWORD" in newest and "question 0" not in newest
    far = compose(busy_view(notice="", scroll=10**6), 120, 40)
    back = "\n".join(emulate(busy_view(notice="", scroll=far.scroll), 120, 40))
    assert "question 0" in back and "LASTWORD" not in back
    assert 0 < far.scroll < 10**6


@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_other_issues_items_fit_as_status_items(width: int, height: int) -> None:
    """Network health (issue 10) and the echo canceller (issue 8) are placed with the status."""
    view = busy_view(
        network="rtt 42 ms · jitter 3 ms · loss 0.0% · turn 640 ms",
        network_bad=True,
        echo_cancelling=True,
        echo_removed_db=31.2,
    )
    assert_fits(view, width, height)
    text = "\n".join(emulate(view, width, height))
    assert "q quit" in text
    if not is_compact(width, height):
        assert "rtt 42 ms" in text and "echo cancelling · 31 dB removed" in text


def call_view(**changes: object) -> View:
    """A plain call as `talk --local` shows it: two turns, rate limits, network and echo items."""
    view = View(
        model="gpt-realtime",
        voice="marin",
        phase="connected",
        elapsed_s=37,
        left_s=3562,
        turns=[
            Message("u1", "user", text="hello there", status="completed", started_at=1e9),
            Message("a1", "assistant", text="You said: hello NEWEST", started_at=1e9),
        ],
        tokens_in=46,
        tokens_out=66,
        cost_usd=0.0039,
        rate_limits=(RateLimit("requests", 4999, 5000), RateLimit("tokens", 395000, 400000)),
        status_items=(
            StatusItem("rtt 1 ms · jitter 0 ms · loss 0.0%", short="rtt 1 ms", priority=30),
            StatusItem("echo cancelling", short="AEC", style="cyan"),
        ),
    )
    return dataclasses.replace(view, **changes)


@pytest.mark.parametrize(("width", "height"), [(80, 24), (100, 30), (140, 45)])
def test_the_help_panel_shows_every_key_at_common_sizes(width: int, height: int) -> None:
    """At 80x24 the help box used to stop one line short: 'q hang up and quit' was cut off."""
    text = "\n".join(emulate(call_view(show_help=True), width, height))
    for line in HELP_TEXT.plain.splitlines():
        words = line.split()[-2:]  # a line's end: the one a cut (or wrap) would lose
        assert " ".join(words) in " ".join(text.split()), f"{line!r} missing:\n{text}"
    assert "hello NEWEST" in text  # the conversation keeps its newest turn


@pytest.mark.parametrize(("width", "height"), [(80, 24), (100, 30), (140, 45)])
def test_an_events_json_gets_the_room_and_says_what_did_not_fit(width: int, height: int) -> None:
    """`o` on a log entry used to show its first 8 lines in the log's box, the rest cut
    silently, while the conversation above kept a dozen empty lines."""
    session = {"type": "realtime", "model": "gpt-realtime"} | {f"k{n}": n for n in range(60)}
    big = pretty_json({"type": "session.updated", "event_id": "event_1", "session": session})
    total = len(big.splitlines())
    view = call_view(show_log=True, log=log_lines(), log_selected=1, log_detail=big)
    rows = emulate(view, width, height)
    top = next(n for n, row in enumerate(rows) if "event (o or Esc closes)" in row)
    inner = rows[top + 1 : next(n for n in range(top, height) if rows[n].startswith("╰"))]
    conversation = rows[2 : rows.index(rows[top]) - 1]  # inside the box above it
    assert len(conversation) == 3, "\n".join(rows)  # all it can spare
    assert len(inner) > 8 and inner[0].strip("│ ") == "{"  # 8: the log box it used to get
    assert f"… {total - (len(inner) - 1)} more lines" in inner[-1], "\n".join(rows)
    assert "hello NEWEST" in "\n".join(conversation)
    small = pretty_json({"type": "response.create", "event_id": "event_2"})
    rows = emulate(dataclasses.replace(view, log_detail=small), width, height)
    assert '"event_id": "event_2"' in "\n".join(rows) and "more lines" not in "\n".join(rows)


def test_the_key_hints_say_what_m_and_space_do_now() -> None:
    """Muted, the hint said `m mute`; talking with --ptt, `space talk`."""

    def hints(**changes: object) -> str:
        return " ".join(line.plain for line in key_hints(call_view(**changes), 200))

    assert "m mute" in hints() and "unmute" not in hints()
    assert "m unmute" in hints(muted=True) and "m mute" not in hints(muted=True)
    assert "space talk" in hints(ptt=True)
    assert "space end turn" in hints(ptt=True, ptt_active=True)


@pytest.mark.parametrize(("width", "height"), [(80, 24), (100, 30), (140, 45)])
def test_the_inline_help_shows_every_key(width: int, height: int) -> None:
    """`--ui inline`: the help was cut to the log's 8 lines, without `?` and `q`."""
    rows = compose_inline(call_view(show_help=True), width, height)
    text = " ".join(" ".join(row.plain.split()) for row in rows.rows)
    assert len(rows.rows) < height
    for line in HELP_TEXT.plain.splitlines():
        assert " ".join(line.split()[-2:]) in text, f"{line!r} missing:\n{text}"


@pytest.mark.parametrize(("width", "height"), [(100, 30), (60, 20)])
def test_the_event_log_takes_the_lines_its_entries_need(width: int, height: int) -> None:
    """Two entries got a box of eight lines, six of them empty, taken from the conversation;
    the box now grows with the log up to its eight lines (fewer when the screen is small)."""

    def log_rows(count: int) -> tuple[int, list[str]]:
        entries = [LogLine(1e9 + n, "server", f"event.number{n}", "") for n in range(count)]
        rows = emulate(call_view(show_log=True, log=entries), width, height)
        at = [n for n, row in enumerate(rows) if "event.number" in row]
        after = rows[at[-1] + 1]  # the box's bottom, or the status below the compact log
        assert after.startswith("╰") or (after.strip() and "│" not in after), rows
        return len(at), rows

    most, _ = log_rows(30)
    assert 4 <= most <= 8  # the newest ones, as many as the panel may take
    for count in (1, 2, 3):
        shown, rows = log_rows(count)
        assert shown == count  # and no empty rows under them (checked in log_rows)
        assert "hello NEWEST" in "\n".join(rows)


@pytest.mark.parametrize("show_log", [False, True])
@pytest.mark.parametrize("ptt", [False, True])
def test_the_compact_key_hints_fit_one_line_at_60x20(ptt: bool, show_log: bool) -> None:
    """At 60x20 the hints took two lines, the second holding only `q quit`: the compact layout
    now leaves the spare hints to the help and keeps one line."""
    view = call_view(ptt=ptt, show_log=show_log, log=log_lines())
    hints = key_hints(view, 60, compact=True)
    assert len(hints) == 1, [line.plain for line in hints]
    text = hints[0].plain
    for needed in ("m mute", "t type", "q quit", *(["space talk"] if ptt else [])):
        assert needed in text
    rows = emulate(view, 60, 20)
    assert rows[-1] == text and "q quit" not in rows[-2]
    dropped = len(key_hints(view, 60)) > 1  # what the full set would need
    assert ("? more" in text) == dropped and ("? help" in text) == (not dropped)


def test_the_compact_network_item_keeps_whole_figures() -> None:
    """It was cut at 24 characters: `rtt 1 ms · jitter 0 ms ·`, a separator with nothing after."""
    view = call_view(network="rtt 1 ms · jitter 0 ms · loss 0.0% · turn 540 ms", status_items=())
    line = " ".join(row.plain for row in status_lines(view, 60, compact=True))
    assert "rtt 1 ms · jitter 0 ms" in line
    assert not line.rstrip().endswith("·") and "· loss" not in line
    wide = " ".join(row.plain for row in status_lines(view, 200, compact=False))
    assert "rtt 1 ms · jitter 0 ms · loss 0.0% · turn 540 ms" in wide
