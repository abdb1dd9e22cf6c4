"""The live terminal UI: Rich Live on the alternate screen at a bounded frame rate, and
single-key commands read in cbreak mode. The terminal is restored however the call ends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import termios
import time
import tty
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live

from rtc_voice.conversation import Turn
from rtc_voice.ui.plain import turn_line
from rtc_voice.ui.render import View, screen

if TYPE_CHECKING:
    from rtc_voice.session import CallSession

FPS = 12  # well under the 15 fps cap; events never trigger a render themselves
NOTICE_SECONDS = 8.0


class LivePresenter:
    def __init__(self, *, ptt: bool = False, console: Console | None = None) -> None:
        self.ptt = ptt
        self.console = console or Console()
        self.show_log = False
        self.show_help = False
        self.typing: str | None = None
        self._notice = ("", False, 0.0)
        self._fd = sys.stdin.fileno()
        self._saved: list[Any] | None = None
        self._live: Live | None = None
        self._closed = False
        self.session: CallSession | None = None

    # --- presenter protocol

    def attach(self, session: CallSession) -> None:
        self.session = session

    def event(self, event: dict[str, Any], direction: str) -> None:
        pass  # the screen is drawn from the conversation state, on its own clock

    def turns_finished(self, turns: list[Turn]) -> None:
        pass

    def notice(self, text: str, *, error: bool = False) -> None:
        self._notice = (text, error, time.monotonic())

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._enter_cbreak()
        loop.add_reader(self._fd, self._on_input)
        try:
            with Live(
                console=self.console,
                screen=True,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
            ) as live:
                self._live = live
                while True:
                    width, height = self.console.size
                    live.update(screen(self.snapshot(), width, height), refresh=True)
                    await asyncio.sleep(1 / FPS)
        finally:
            self._live = None
            with contextlib.suppress(Exception):
                loop.remove_reader(self._fd)
            self._restore()

    def close(self) -> None:
        """Leave the terminal as we found it, then print the conversation for scrollback."""
        if self._closed:
            return
        self._closed = True
        if self._live is not None:  # forced exit while the screen is up
            with contextlib.suppress(Exception):
                self._live.stop()
        self._restore()
        if self.session is not None:
            for turn in self.session.conversation.turns():
                self.console.print(turn_line(turn), highlight=False, markup=False)

    # --- terminal

    def _enter_cbreak(self) -> None:
        with contextlib.suppress(termios.error, OSError):
            self._saved = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd)  # keys arrive one by one; Ctrl-C still raises SIGINT

    def _restore(self) -> None:
        if self._saved is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    # --- keys

    def _on_input(self) -> None:
        try:
            data = os.read(self._fd, 256).decode("utf-8", "ignore")
        except OSError:
            return
        if data.startswith("\x1b[") or data.startswith("\x1bO"):
            return  # arrows and other escape sequences
        for char in data:
            self.key(char)

    def key(self, char: str) -> None:
        session = self.session
        if session is None:
            return
        if self.typing is not None:
            if char in ("\r", "\n"):
                session.send_text(self.typing)
                self.typing = None
            elif char == "\x1b":
                self.typing = None
            elif char in ("\x7f", "\b"):
                self.typing = self.typing[:-1]
            elif char == "\x15":
                self.typing = ""
            elif char.isprintable():
                self.typing += char
            return
        if char == "q":
            session.quit("you hung up")
        elif char == "m":
            session.toggle_mute()
        elif char == "i":
            session.interrupt()
        elif char in ("t", "\r", "\n"):
            self.typing = ""
        elif char == "l":
            self.show_log, self.show_help = not self.show_log, False
        elif char == "?":
            self.show_help = not self.show_help
        elif char == " " and self.ptt:
            session.push_to_talk()

    # --- snapshot

    def snapshot(self) -> View:
        session = self.session
        if session is None:
            return View()
        conv = session.conversation
        text, error, since = self._notice
        if text and time.monotonic() - since > NOTICE_SECONDS:
            text = ""
        mic = session.mic.track.level_dbfs if session.mic is not None else -120.0
        speaker = session.sink.level_dbfs if session.sink is not None else -120.0
        echo = session.echo.stage if session.echo is not None else None
        return View(
            model=conv.model or session.settings.model,
            voice=conv.voice or session.settings.voice,
            phase=session.state.phase,
            elapsed_s=session.elapsed,
            left_s=session.time_left,
            turns=conv.turns()[-60:],
            log=list(conv.log)[-12:],
            show_log=self.show_log,
            show_help=self.show_help,
            mic_dbfs=-120.0 if session.state.muted else mic,
            speaker_dbfs=speaker,
            muted=session.state.muted,
            speaking=conv.speaking,
            tokens_in=conv.usage.input_tokens,
            tokens_out=conv.usage.output_tokens,
            cost_usd=session.cost_usd,
            typing=self.typing,
            ptt=self.ptt,
            ptt_active=session.state.ptt_active,
            notice=text,
            notice_error=error,
            echo_cancelling=echo is not None,
            echo_removed_db=echo.removed_db if echo is not None and echo.far_active else None,
        )
