"""The call screen rendered into a StringIO console (pure renderables, no terminal)."""

from __future__ import annotations

from io import StringIO

from rich.console import Console

from rtc_voice.conversation import FunctionCall, Message, Turn
from rtc_voice.eventlog import LogLine
from rtc_voice.ui.render import View, meter, screen


def render(view: View, width: int = 90, height: int = 24) -> str:
    console = Console(file=StringIO(), width=width, height=height, color_system=None)
    console.print(screen(view, width, height))
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(output, str)
    return output


def turns() -> list[Turn]:
    return [
        Message("u1", "user", text="what time is it", status="completed", started_at=1e9),
        FunctionCall(
            "f1",
            name="get_time",
            arguments="{}",
            output='{"local_time": "12:00"}',
            status="completed",
            started_at=1e9,
        ),
        Message("a1", "assistant", text="It is noon and", status="interrupted", started_at=1e9),
        Message("u2", "user", text="hey", typed=True, status="completed", started_at=1e9),
        Message("a2", "assistant", text="Hello", status="in_progress", started_at=1e9),
    ]


def test_header_conversation_and_footer() -> None:
    out = render(
        View(
            model="gpt-realtime",
            voice="marin",
            phase="connected",
            elapsed_s=83,
            left_s=3517,
            turns=turns(),
            mic_dbfs=-30,
            speaker_dbfs=-120,
            speaking="assistant",
            tokens_in=1200,
            tokens_out=340,
            cost_usd=0.0123,
        )
    )
    assert "gpt-realtime · marin · connected · 01:23 · 58:37 left" in out
    assert "what time is it" in out
    assert 'ƒ get_time({}) → {"local_time": "12:00"}' in out
    assert "It is noon and ⟂ interrupted" in out
    assert "you (typed)" in out and "Hello ▌" in out
    assert "assistant speaking" in out and "tokens 1200↑ 340↓ · $0.0123" in out
    assert "m mute · i interrupt · t type · l log · ? help · q quit" in out
    assert len(out.splitlines()) <= 24


def test_muted_typing_notice_and_ptt() -> None:
    out = render(
        View(
            phase="connected",
            muted=True,
            typing="hello wor",
            notice="server error: boom",
            notice_error=True,
            ptt=True,
            ptt_active=True,
        )
    )
    assert "MUTED" in out and "message> hello wor" in out and "Esc cancel" in out
    assert "server error: boom" in out and "PTT: talking" in out


def test_only_the_newest_turns_fit() -> None:
    many = [
        Message(f"u{i}", "user", text=f"message number {i}", status="completed") for i in range(100)
    ]
    out = render(View(turns=many), height=20)
    assert "message number 99" in out and "message number 10 " not in out
    assert len(out.splitlines()) <= 20


def test_log_and_help_panels() -> None:
    log = [
        LogLine(1e9, "client", "response.create", ""),
        LogLine(1e9, "server", "response.output_audio_transcript.delta", "'hi there'", count=42),
        LogLine(1e9, "server", "error", "unknown_parameter: bad", error=True),
    ]
    out = render(View(log=log, show_log=True))
    assert "event log" in out and "→ response.create" in out
    assert "← response.output_audio_transcript.delta x42 'hi there'" in out
    assert "← error unknown_parameter: bad" in out
    helped = render(View(show_help=True))
    assert "push-to-talk" in helped and "hang up and quit" in helped


def test_meter_scale() -> None:
    assert meter(-120).plain == "▯" * 12
    assert meter(0).plain == "▮" * 12
    assert meter(-30).plain == "▮" * 6 + "▯" * 6


def test_a_turn_that_changes_is_wrapped_again() -> None:
    """Wrapped turns are cached by content: a growing reply shows its new words."""
    reply = Message("a9", "assistant", text="Hello", status="in_progress", started_at=1e9)
    first = render(View(turns=[reply]))
    reply.text += " there, how can I help?"
    second = render(View(turns=[reply]))
    reply.status = "interrupted"
    third = render(View(turns=[reply]))
    assert "help?" not in first and "help?" in second
    assert "interrupted" not in second and "interrupted" in third
    assert render(View(turns=[reply])) == third
