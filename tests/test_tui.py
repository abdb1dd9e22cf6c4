"""The live UI in a real terminal: tmux runs `talk --local`, we press keys and read the screen."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rtc_voice.audio.pcm import silence
from rtc_voice.audio.wavfile import WavWriter

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None and not os.environ.get("CI"),
    reason="tmux is not installed (CI installs it)",
)


class Tmux:
    """A tmux server of its own, on a socket in a directory of its own: `kill` stops the
    server and removes both (tmux leaves its socket file behind when its server exits)."""

    def __init__(self, command: str) -> None:
        self._dir = tempfile.mkdtemp(prefix="rtc-voice-tmux-")
        self.socket = os.path.join(self._dir, "socket")
        subprocess.run(
            [
                "tmux",
                "-S",
                self.socket,
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "110",
                "-y",
                "32",
                command,
            ],
            check=True,
        )

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "-S", self.socket, "capture-pane", "-t", "t", "-p"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "-S", self.socket, "send-keys", "-t", "t", *keys], check=True)

    def wait(self, predicate: Callable[[str], bool], what: str, within: float = 20) -> str:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(0.1)
        size = subprocess.run(
            [
                "tmux",
                "-S",
                self.socket,
                "display",
                "-p",
                "-t",
                "t",
                "#{window_width}x#{window_height}",
            ],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        raise AssertionError(f"never saw {what} at {size}; screen was:\n{self.screen()}")

    def resize(self, width: int, height: int) -> None:
        subprocess.run(
            [
                "tmux",
                "-S",
                self.socket,
                "resize-window",
                "-t",
                "t",
                "-x",
                str(width),
                "-y",
                str(height),
            ],
            check=True,
        )

    def kill(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], check=False, capture_output=True)
        shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture
def tmux_talk(tmp_path: Path) -> Iterator[Tmux]:
    quiet = tmp_path / "quiet.wav"
    writer = WavWriter(quiet)
    writer.write(silence(60_000))
    writer.close()
    env = f"XDG_CONFIG_HOME={shlex.quote(str(tmp_path))}"
    talk = (
        f"{shlex.quote(sys.executable)} -m rtc_voice talk --local --input "
        f"{shlex.quote(str(quiet))} --output none"
    )
    session = Tmux(f"env {env} {talk}; echo EXIT=$?; stty -a; sleep 60")
    yield session
    session.kill()


def test_mute_type_reply_quit_and_terminal_restored(tmux_talk: Tmux) -> None:
    tmux_talk.wait(lambda s: "connected" in s and "q quit" in s, "the connected screen")
    tmux_talk.keys("m")
    tmux_talk.wait(lambda s: "MUTED" in s, "MUTED after m")
    tmux_talk.keys("t")
    tmux_talk.wait(lambda s: "message>" in s, "the message prompt after t")
    tmux_talk.keys("-l", "hello from tmux")
    tmux_talk.keys("Enter")
    tmux_talk.wait(lambda s: "You said: hello from tmux" in s, "the reply", within=30)
    tmux_talk.keys("l")
    tmux_talk.wait(lambda s: "event log" in s and "response.done" in s, "the event log")
    tmux_talk.keys("m")
    tmux_talk.wait(lambda s: "MUTED" not in s, "unmuted after m again")
    tmux_talk.keys("q")
    final = tmux_talk.wait(  # `stty -a` prints after EXIT=; on a busy machine, a moment after
        lambda s: "EXIT=" in s and "icanon" in s, "the process to exit and stty to report"
    )
    assert "EXIT=0" in final
    assert "you: hello from tmux" in final  # the conversation stays in the scrollback
    assert "-icanon" not in final and " icanon" in final and " echo" in final


def rows_fit(screen: str, width: int, height: int) -> bool:
    rows = screen.rstrip("\n").split("\n")
    return len(rows) <= height and all(len(row) <= width for row in rows)


def test_resizing_during_a_call_keeps_keys_and_prompt(tmux_talk: Tmux) -> None:
    tmux_talk.wait(lambda s: "connected" in s and "q quit" in s, "the connected screen")
    tmux_talk.keys("m")
    tmux_talk.wait(lambda s: "MUTED" in s, "MUTED after m")
    for width, height in ((60, 20), (40, 12)):
        tmux_talk.resize(width, height)
        screen = tmux_talk.wait(
            lambda s, w=width, h=height: "q quit" in s and "MUTED" in s and rows_fit(s, w, h),
            f"the keys and MUTED at {width}x{height}",
        )
        assert rows_fit(screen, width, height)
        assert "╭" not in screen  # the compact layout: no boxes
    tmux_talk.keys("t")
    tmux_talk.wait(lambda s: "message>" in s and "Esc cancel" in s, "the prompt at 40x12")
    tmux_talk.keys("-l", "small screen")
    tmux_talk.keys("Enter")
    tmux_talk.wait(
        lambda s: "You said: small screen" in s and "q quit" in s and "╭" not in s,
        "the reply at 40x12 (compact)",
        within=30,
    )
    tmux_talk.resize(130, 40)
    tmux_talk.wait(lambda s: "╭─ conversation" in s and "q quit" in s, "the full layout again")
    tmux_talk.keys("q")
    final = tmux_talk.wait(lambda s: "EXIT=" in s, "the process to exit")
    assert "EXIT=0" in final


def test_inline_mode_leaves_the_conversation_in_scrollback_once(tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.wav"
    writer = WavWriter(quiet)
    writer.write(silence(60_000))
    writer.close()
    talk = (
        f"{shlex.quote(sys.executable)} -m rtc_voice talk --local --ui inline --input "
        f"{shlex.quote(str(quiet))} --output none"
    )
    session = Tmux(
        f"env XDG_CONFIG_HOME={shlex.quote(str(tmp_path))} {talk}; echo EXIT=$?; sleep 60"
    )
    try:
        session.wait(lambda s: "connected" in s and "q quit" in s, "the live region")
        for text in ("first inline", "second inline"):
            session.keys("t")
            session.wait(lambda s: "message>" in s, "the prompt")
            session.keys("-l", text)
            session.keys("Enter")
            session.wait(
                lambda s, t=text: (
                    f"You said: {t}" in s and "▌" not in s.split("You said: " + t)[1][:3]
                ),
                f"the reply to {text}",
                within=30,
            )
        screen = session.screen()
        assert "╭" not in screen  # no full-screen boxes
        assert screen.index("first inline") < screen.index("second inline") < screen.index("q quit")
        session.keys("q")
        final = session.wait(lambda s: "EXIT=" in s, "the process to exit")
        assert "EXIT=0" in final and "q quit" not in final  # the live region is gone
        assert final.count("You said: first inline") == 1
        assert final.count("You said: second inline") == 1
    finally:
        session.kill()


def test_a_killed_tmux_leaves_no_socket_behind() -> None:
    session = Tmux("sleep 30")
    assert os.path.exists(session.socket)
    session.kill()
    assert not os.path.exists(session.socket)
    assert not os.path.exists(os.path.dirname(session.socket))


def test_without_a_microphone_the_screen_says_so_instead_of_a_meter(tmp_path: Path) -> None:
    """`--input none`: no level meter that never moves, no mute key, and the empty
    conversation says to type. `--output none`: no speaker meter either."""
    talk = f"{shlex.quote(sys.executable)} -m rtc_voice talk --local --input none --output none"
    session = Tmux(
        f"env XDG_CONFIG_HOME={shlex.quote(str(tmp_path))} {talk}; echo EXIT=$?; sleep 60"
    )
    try:
        screen = session.wait(
            lambda s: "connected" in s and "q quit" in s and "no microphone" in s,
            "the connected screen saying there is no microphone",
        )
        assert "mic ▯" not in screen and "m mute" not in screen
        assert "press t to type a message" in screen
        assert "no speaker" in screen and "spk ▯" not in screen
        session.resize(60, 20)  # the compact layout
        screen = session.wait(
            lambda s: "no mic " in s and "no spk" in s and "q quit" in s and "╭" not in s,
            "the compact screen",
        )
        assert "mic ▯" not in screen and "m mute" not in screen
        assert "no spk" in screen and "spk ▯" not in screen
        session.keys("q")
        assert "EXIT=0" in session.wait(lambda s: "EXIT=" in s, "the process to exit")
    finally:
        session.kill()
