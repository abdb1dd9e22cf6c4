"""Keys on the call screen (the presenter's own state: scroll, log picking, JSON, filter,
a standing question) and what its snapshot shows (time left, rate limits)."""

from __future__ import annotations

import json
from io import StringIO

from rich.console import Console

from rtc_voice.call.controls import (
    CallSnapshot,
    Command,
    HangUp,
    Question,
    SendText,
    ToggleMute,
)
from rtc_voice.call.supervisor import CallSupervisor, TalkOptions
from rtc_voice.config import Settings
from rtc_voice.conversation import Message
from rtc_voice.eventlog import EventLog
from rtc_voice.protocol.defaults import SESSION_CAP_SECONDS
from rtc_voice.ui.plain import LinePresenter
from rtc_voice.ui.render import compose
from rtc_voice.ui.terminal import LivePresenter


class Recorded:
    def __init__(self) -> None:
        self.sent: list[Command] = []

    def send(self, command: Command) -> None:
        self.sent.append(command)


def presenter(snapshot: CallSnapshot) -> tuple[LivePresenter, Recorded]:
    screen = LivePresenter(console=Console(file=StringIO(), width=100, height=30), keys=False)
    controls = Recorded()
    screen.bind(controls, lambda: snapshot)
    return screen, controls


def long_snapshot() -> CallSnapshot:
    turns = tuple(
        Message(f"m{n}", "user", text=f"turn number {n}", status="completed", started_at=1e9)
        for n in range(80)
    )
    log = EventLog(clock=lambda: 1e9)
    for n in range(30):
        log.add(
            {"type": "response.created", "event_id": f"e{n}", "response": {"id": f"r{n}"}}, "server"
        )
    log.add({"type": "error", "error": {"type": "x", "code": "boom", "message": "bad"}}, "server")
    return CallSnapshot(phase="connected", turns=turns, log=tuple(log.newest(100)))


def test_page_up_scrolls_back_through_finished_turns_and_end_returns() -> None:
    snap = long_snapshot()
    screen, _ = presenter(snap)
    screen.turns_finished(list(snap.turns[:50]))  # older turns the snapshot no longer holds
    short = CallSnapshot(phase="connected", turns=snap.turns[50:])
    screen.bind(screen.controls, lambda: short)  # type: ignore[arg-type]
    text = lambda: "".join(r.plain + "\n" for r in compose(screen.view(), 100, 30).renderable.rows)  # type: ignore[attr-defined]  # noqa: E731
    assert "turn number 79" in text() and "turn number 40" not in text()
    screen.key("home")
    assert "turn number 0" in text() and "turn number 79" not in text()
    screen.key("end")
    assert "turn number 79" in text()
    screen.key("pgup")
    assert screen.view().scroll > 0


def test_picking_a_log_entry_opens_its_json_and_holds_the_log_still() -> None:
    screen, _ = presenter(long_snapshot())
    screen.key("l")
    screen.key("up")  # the newest entry: the error
    screen.key("o")
    view = screen.view()
    assert view.log_detail is not None
    assert json.loads(view.log_detail)["error"]["code"] == "boom"
    screen.key("\x1b")  # closes the JSON
    screen.key("up")
    view = screen.view()
    assert view.log_selected is not None and view.log[view.log_selected].type == "response.created"


def test_the_log_filter_keeps_matching_lines() -> None:
    screen, controls = presenter(long_snapshot())
    for key in "l/error\r":
        screen.key(key)
    view = screen.view()
    assert [line.type for line in view.log] == ["error"] and view.log_filter == "error"
    assert controls.sent == []  # the filter's letters are not commands (e, r, o...)
    screen.key("\x1b")
    assert len(screen.view().log) == 31


def test_a_question_takes_its_keys_first() -> None:
    allow, deny = HangUp("allowed"), HangUp("denied")
    snap = CallSnapshot(
        question=Question("Run get_time?", (("y", "allow", allow), ("n", "deny", deny)))
    )
    screen, controls = presenter(snap)
    screen.key("n")
    screen.key("m")
    assert controls.sent == [deny, ToggleMute()]


def test_typed_text_is_sent_and_typing_letters_are_not_commands() -> None:
    screen, controls = presenter(CallSnapshot())
    for key in "tquit me\r":
        screen.key(key)
    assert controls.sent == [SendText("quit me")]


def test_time_left_is_the_sooner_of_max_duration_and_the_session_cap() -> None:
    now = [100.0]
    call = CallSupervisor(
        Settings(), TalkOptions(max_duration=8), LinePresenter(), api_key=None, clock=lambda: now[0]
    )
    from rtc_voice.call import state as st

    call.state = st.Connected(since=100.0)
    now[0] = 102.0
    assert call.snapshot().left_s == 6.0
    long = CallSupervisor(
        Settings(), TalkOptions(), LinePresenter(), api_key=None, clock=lambda: now[0]
    )
    long.state = st.Connected(since=100.0)
    assert long.snapshot().left_s == SESSION_CAP_SECONDS - 2.0


def test_rate_limits_reach_the_snapshot() -> None:
    call = CallSupervisor(Settings(), TalkOptions(), LinePresenter(), api_key=None)
    call.conversation.apply(
        {
            "type": "rate_limits.updated",
            "event_id": "e1",
            "rate_limits": [
                {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.01},
                {"name": "tokens", "limit": 40000, "remaining": 39000, "reset_seconds": 1.5},
            ],
        }
    )
    limits = call.snapshot().rate_limits
    assert [(r.name, r.remaining) for r in limits] == [("requests", 4999), ("tokens", 39000)]
