"""Calls without the live screen: scripted --say calls that end by themselves, --input none,
a closed pipe, TERM=dumb and stdout redirected with a terminal on stdin (the last two in a real
terminal under tmux)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from rtc_voice.ui.modes import terminal_problem
from tests.test_tui import Tmux, pytestmark  # noqa: F401  (skip without tmux)

TALK = [sys.executable, "-m", "rtc_voice", "talk", "--local", "--input", "none", "--output", "none"]


def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}


@pytest.mark.timeout(60)
def test_several_say_in_order_end_by_themselves_without_a_microphone(tmp_path: Path) -> None:
    """--input none needs no microphone; without a terminal the call ends after the last
    reply (it used to run until --max-duration)."""
    transcript = tmp_path / "t.jsonl"
    done = subprocess.run(
        [
            *TALK,
            "--say",
            "first one",
            "--say",
            "second one",
            "--max-duration",
            "40",
            "--transcript",
            str(transcript),
        ],
        env=env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "you: first one",
        "assistant: You said: first one",
        "you: second one",
        "assistant: You said: second one",
    ]
    assert "every --say was answered" in done.stderr
    assert "--max-duration" not in done.stderr


@pytest.mark.timeout(60)
def test_a_closed_pipe_ends_the_call_quietly(tmp_path: Path) -> None:
    """`| head -1` as with `git log | head`: exit 0, nothing on stderr about a broken pipe."""
    talk = " ".join(shlex.quote(a) for a in [*TALK, "--say", "one", "--say", "two"])
    script = (
        f'{talk} 2>{shlex.quote(str(tmp_path / "err"))} | head -1; echo "rc=${{PIPESTATUS[0]}}"'
    )
    done = subprocess.run(
        ["bash", "-c", script],
        env=env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=50,
    )
    err = (tmp_path / "err").read_text()
    assert done.stdout.splitlines() == ["you: one", "rc=0"], err
    assert "BrokenPipe" not in err and "rror" not in err and "Call ended" not in err


def test_terminal_capabilities() -> None:
    assert terminal_problem("dumb") is not None
    assert terminal_problem("") is not None
    assert terminal_problem("no-such-terminal-type") is not None
    assert terminal_problem("xterm") is None


def tmux_talk(tmp_path: Path, prefix: str, suffix: str = "") -> Tmux:
    talk = " ".join(shlex.quote(a) for a in TALK)
    home = shlex.quote(str(tmp_path))
    return Tmux(f"env XDG_CONFIG_HOME={home} {prefix} {talk} {suffix}; echo EXIT=$?; sleep 60")


def test_term_dumb_gets_line_mode_with_a_note_and_typing_works(tmp_path: Path) -> None:
    session = tmux_talk(tmp_path, "TERM=dumb")
    try:
        session.wait(lambda s: "Plain line mode (TERM=dumb" in s, "the line-mode note")
        session.keys("-l", "hello plain")
        session.keys("Enter")
        session.wait(lambda s: "assistant: You said: hello plain" in s, "the reply", within=30)
        session.keys("-l", "/q")
        session.keys("Enter")
        final = session.wait(lambda s: "EXIT=" in s, "the process to exit")
        assert "EXIT=0" in final
    finally:
        session.kill()


def test_redirected_output_with_a_terminal_on_stdin_says_what_works(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    session = tmux_talk(tmp_path, "", f"> {shlex.quote(str(out))}")
    try:
        screen = session.wait(lambda s: "Output is not a terminal" in s, "the note")
        assert "press Enter" in screen and "Type with t" not in screen
        session.keys("-l", "written down")
        session.keys("Enter")
        session.wait(
            lambda s: out.exists() and "You said: written down" in out.read_text(),
            "the reply in the file",
            within=30,
        )
        session.keys("-l", "/q")
        session.keys("Enter")
        assert "EXIT=0" in session.wait(lambda s: "EXIT=" in s, "the process to exit")
        assert out.read_text().splitlines()[0] == "you: written down"
    finally:
        session.kill()


def test_exit_after_reply_ends_a_call_on_the_live_screen(tmp_path: Path) -> None:
    session = tmux_talk(tmp_path, "", "--say 'just this' --exit-after-reply")
    try:
        final = session.wait(lambda s: "EXIT=" in s, "the call to end by itself", within=30)
        assert "EXIT=0" in final and "assistant: You said: just this" in final
    finally:
        session.kill()


def test_slash_m_says_whether_the_microphone_is_now_muted() -> None:
    """Line mode has no MUTED badge: `/m` used to toggle the microphone without a word."""
    from io import StringIO

    from rtc_voice.audio.io import open_microphone
    from rtc_voice.call.supervisor import CallSupervisor, TalkOptions
    from rtc_voice.config import Settings
    from rtc_voice.ui.plain import LinePresenter

    err = StringIO()
    presenter = LinePresenter(out=StringIO(), err=err, read_lines=True)
    call = CallSupervisor(Settings(), TalkOptions(), presenter, api_key=None)
    presenter.bind(call, call.snapshot)
    presenter.line("/m")  # before the microphone is open: the toggle does nothing
    assert not call.muted and "not open yet" in err.getvalue()
    call.mic = open_microphone("none")
    presenter.line("/m")
    assert call.muted and call.mic.track.muted
    assert err.getvalue().splitlines()[-1].startswith("Muted:")
    presenter.line("/mute")
    assert not call.muted and err.getvalue().splitlines()[-1].startswith("Unmuted:")


def test_an_unknown_slash_command_is_refused_and_a_double_slash_sends_one(
    tmp_path: Path,
) -> None:
    """`/x` in line mode went to the model as a message; it now gets the list of commands,
    and `//hi` sends `/hi` (in a real terminal under tmux)."""
    session = tmux_talk(tmp_path, "TERM=dumb")
    try:
        session.wait(lambda s: "Plain line mode (TERM=dumb" in s, "the line-mode note")
        session.keys("-l", "/x")
        session.keys("Enter")
        screen = session.wait(lambda s: "Unknown command /x" in s, "the refusal", within=15)
        assert "/m mute, /i interrupt, /q hang up" in screen
        session.keys("-l", "//hi there")
        session.keys("Enter")
        screen = session.wait(lambda s: "You said: /hi there" in s, "the reply", within=30)
        assert "You said: /x" not in screen and "you: /x" not in screen
        session.keys("-l", "/q")
        session.keys("Enter")
        assert "EXIT=0" in session.wait(lambda s: "EXIT=" in s, "the process to exit")
    finally:
        session.kill()


def test_a_slash_line_with_arguments_is_still_a_message() -> None:
    """`/call NAME {json}` (the local server's way to make the model call a tool, README) is
    sent as typed; only a lone unknown `/word` is refused."""
    from io import StringIO

    from rtc_voice.call.controls import SendText
    from rtc_voice.call.supervisor import CallSupervisor, TalkOptions
    from rtc_voice.config import Settings
    from rtc_voice.ui.plain import LinePresenter

    err = StringIO()
    presenter = LinePresenter(out=StringIO(), err=err, read_lines=True)
    call = CallSupervisor(Settings(), TalkOptions(), presenter, api_key=None)
    presenter.bind(call, call.snapshot)
    sent: list[object] = []
    presenter.controls = SimpleNamespace(send=sent.append)  # type: ignore[assignment]
    presenter.line('/call echo {"text": "hi"}')
    presenter.line("/help")
    presenter.line("//help")
    assert sent == [SendText('/call echo {"text": "hi"}'), SendText("/help")]
    assert err.getvalue().count("Unknown command /help") == 1
