"""The live terminal UI: Rich Live on the alternate screen at a bounded frame rate, and
single-key commands read in cbreak mode. The terminal is restored however the call ends.

It holds no call: it renders immutable snapshots and sends commands. Each frame's snapshot is
taken on the event loop (cheap copies); laying it out and writing it to the terminal happen on
a worker thread, so a long conversation never holds up the audio on the loop.

A frame is drawn only when what it shows changed (`render.shown`: the clock's whole seconds,
the meters' cells, the words...), never just because time passed: a quiet call costs a
snapshot comparison a few times a second, not a redraw. Keys and resizes draw at once, events
(transcript deltas) wake the screen at up to `FPS`, and level meters alone move at `METER_FPS`."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import os
import signal
import sys
import termios
import time
import tty
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from rtc_voice.call.controls import (
    CallSnapshot,
    Controls,
    HangUp,
    Interrupt,
    PushToTalk,
    SendText,
    ToggleMute,
)
from rtc_voice.conversation import Turn, final_status
from rtc_voice.eventlog import LogLine
from rtc_voice.ui.plain import turn_line
from rtc_voice.ui.render import (
    Rows,
    View,
    compose,
    compose_inline,
    pretty_json,
    shown,
    wrapped_turn,
)

FPS = 12  # at most this many frames a second (well under the 15 fps cap)
METER_FPS = 6  # when only the level meters moved (they move all the time while audio flows)
IDLE_POLL_S = 0.25  # how often a screen whose meters were still for `ACTIVE_S` looks again
ACTIVE_S = 1.0
# Events and keys wake the screen themselves; looking without one is only for what time moves
# (the clock, the meters, a notice running out), so it is done at the meters' rate at most.
# A frame is drawn on a worker thread, but it holds the GIL while it runs Python; by default
# the loop thread would wait up to 5 ms for it at each switch. 0.5 ms while a frame is drawn
# keeps the loop (and the audio on it) waking on time; between frames the default is back
# (forced switches among the audio threads would cost CPU for nothing).
SWITCH_INTERVAL_S = 0.0005
NOTICE_SECONDS = 8.0
KEY_SEQUENCES = {  # escape sequences of the keys that scroll and pick
    "\x1b[5~": "pgup",
    "\x1b[6~": "pgdn",
    "\x1b[A": "up",
    "\x1bOA": "up",
    "\x1b[B": "down",
    "\x1bOB": "down",
    "\x1b[H": "home",
    "\x1b[1~": "home",
    "\x1bOH": "home",
    "\x1b[F": "end",
    "\x1b[4~": "end",
    "\x1bOF": "end",
}


class LivePresenter:
    def __init__(
        self, *, ptt: bool = False, console: Console | None = None, keys: bool = True
    ) -> None:
        self.ptt = ptt
        self.keys = keys  # read single keys from stdin (off for benchmarks)
        self.console = console or Console()
        self.show_log = False
        self.show_help = False
        self.typing: str | None = None
        self.typing_hint = "Type with t"
        self.scroll = 0  # conversation lines back from the newest
        self.log_selected: int | None = None  # picked log entry, counted back from the newest
        self.log_detail = False  # the picked entry's JSON is open
        self.log_filter = ""  # only log lines containing this (case-insensitive)
        self.filtering = False  # typing the filter
        self._frozen_log: tuple[LogLine, ...] | None = None  # the log held still while picking
        self._page = 10
        self._history: list[Turn] = []  # finished turns (they never change), for scrolling
        self._history_at: dict[str, int] = {}
        self._redraw = asyncio.Event()
        self._urgent = False  # a key or a resize: draw without waiting for the frame rate
        self.frames_drawn = 0
        self.live_options: dict[str, Any] = {"screen": True}
        self._notice = ("", False, 0.0)
        self._fd = sys.stdin.fileno() if keys else -1
        self._saved: list[Any] | None = None
        self._live: Live | None = None
        self._closed = False
        self.controls: Controls | None = None
        self._snapshot: Callable[[], CallSnapshot] = CallSnapshot

    # --- presenter protocol

    def bind(self, controls: Controls, snapshot: Callable[[], CallSnapshot]) -> None:
        self.controls = controls
        self._snapshot = snapshot

    def event(self, event: Mapping[str, Any], direction: str) -> None:
        self._redraw.set()  # the screen is drawn from the call's snapshot: look at it soon

    def turns_finished(self, turns: list[Turn]) -> None:
        for turn in turns:  # copies: the screen thread reads them
            if turn.item_id not in self._history_at:
                self._history_at[turn.item_id] = len(self._history)
                self._history.append(copy.copy(turn))

    def notice(self, text: str, *, error: bool = False) -> None:
        self._notice = (text, error, time.monotonic())

    def show(self, model: str, voice: str) -> None:
        """Put the screen up now, before the call's own modules load (what the user sees first:
        the first frame about 0.1 s sooner)."""
        if self.keys:
            self._enter_cbreak()
        self._draw(self._start_live(), View(model=model, voice=voice, ptt=self.ptt))

    def _start_live(self) -> Live:
        if self._live is None:
            self._live = Live(
                console=self.console,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
                **self.live_options,
            )
            self._live.start()
        return self._live

    def _wake_now(self) -> None:
        self._urgent = True
        self._redraw.set()

    def _has_output(self) -> bool:
        """Something to write besides the live region (the inline presenter's finished turns)."""
        return False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        switch_interval = sys.getswitchinterval()
        if self.keys:
            self._enter_cbreak()
            loop.add_reader(self._fd, self._on_input)
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):
            loop.add_signal_handler(signal.SIGWINCH, self._wake_now)  # resized: draw now
        try:
            live = self._start_live()
            view = self.view()
            self._draw(live, view)  # the first frame at once, on the loop
            drawn = (self.size(), *shown(view))
            drawn_at = changed_at = time.monotonic()
            while True:
                self._redraw.clear()
                idle = time.monotonic() - changed_at > ACTIVE_S
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(IDLE_POLL_S if idle else 1 / METER_FPS):
                        await self._redraw.wait()
                urgent, self._urgent = self._urgent, False
                wait = drawn_at + 1 / FPS - time.monotonic()
                if wait > 0 and not urgent:  # events come in bursts: at most FPS frames
                    await asyncio.sleep(wait)
                view = self.view()
                now = (self.size(), *shown(view))  # (size, all but the meters, the meters)
                if now == drawn and not self._has_output():
                    continue
                changed_at = time.monotonic()
                if now[:2] == drawn[:2] and changed_at - drawn_at < 1 / METER_FPS:
                    continue  # only the meters moved, and they were drawn moments ago
                drawn, drawn_at = now, changed_at
                sys.setswitchinterval(min(switch_interval, SWITCH_INTERVAL_S))
                try:
                    await asyncio.to_thread(self._draw, live, view)
                finally:
                    sys.setswitchinterval(switch_interval)
        finally:
            if self._live is not None:
                with contextlib.suppress(Exception):
                    self._live.stop()
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):
                loop.remove_signal_handler(signal.SIGWINCH)
            self._live = None
            if self.keys:
                with contextlib.suppress(Exception):
                    loop.remove_reader(self._fd)
            self._restore()

    def _draw(self, live: Live, view: View) -> None:
        width, height = self.size()
        frame = compose(view, width, height)
        if view.scroll == self.scroll:  # keep a scroll the user made meanwhile
            self.scroll = frame.scroll
        self._page = max(1, frame.body_lines - 1)
        live.update(frame.renderable, refresh=True)
        self.frames_drawn += 1

    def size(self) -> tuple[int, int]:
        """The terminal's size now, asked of the terminal itself: COLUMNS and LINES (which Rich
        prefers, and some shells export) go stale the moment the window is resized."""
        with contextlib.suppress(AttributeError, ValueError, OSError):
            fd = self.console.file.fileno()
            if os.isatty(fd):
                width, height = os.get_terminal_size(fd)
                if width > 0 and height > 0:
                    self.console.size = (width, height)  # what Live's screen crops to
                    return width, height
        return self.console.size

    def close(self, turns: Sequence[Turn]) -> None:
        """Leave the terminal as we found it, then print the conversation for scrollback."""
        if self._closed:
            return
        self._closed = True
        if self._live is not None:  # forced exit while the screen is up
            with contextlib.suppress(Exception):
                self._live.stop()
        self._restore()
        for turn in turns:
            self.console.print(turn_line(turn), highlight=False, markup=False)

    # --- terminal

    def _enter_cbreak(self) -> None:
        if self._saved is not None:
            return  # already in cbreak mode (show() came first)
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
        while data:
            if data.startswith("\x1b") and len(data) > 1:
                for sequence, name in KEY_SEQUENCES.items():
                    if data.startswith(sequence):
                        self.key(name)
                        data = data[len(sequence) :]
                        break
                else:  # another escape sequence: skip it whole
                    end = next((n for n, c in enumerate(data[2:], 2) if c.isalpha() or c == "~"), 1)
                    data = data[end + 1 :]
                continue
            self.key(data[0])
            data = data[1:]
        self._wake_now()

    def key(self, char: str) -> None:
        """One key: a character, or the name of a special key (`pgup`, `up`, `end`, ...)."""
        controls = self.controls
        if controls is None:
            return
        question = self._snapshot().question
        if question is not None:
            for key, _, command in question.answers:
                if char == key:
                    controls.send(command)
                    return
        if len(char) > 1:
            self._navigate(char)
            return
        if self.filtering:
            if char in ("\r", "\n"):
                self.filtering = False
            elif char == "\x1b":
                self.filtering, self.log_filter = False, ""
            elif char in ("\x7f", "\b"):
                self.log_filter = self.log_filter[:-1]
            elif char.isprintable():
                self.log_filter += char
            return
        if self.typing is not None:
            if char in ("\r", "\n"):
                controls.send(SendText(self.typing))
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
            controls.send(HangUp("you hung up"))
        elif char == "m":
            controls.send(ToggleMute())
        elif char == "i":
            controls.send(Interrupt())
        elif char in ("t", "\r", "\n"):
            self.typing = ""
        elif char == "l":
            self.show_log, self.show_help = not self.show_log, False
            self._unpick()
        elif char == "o" and self.show_log:
            self.log_detail = not self.log_detail
            if self.log_detail and self.log_selected is None:
                self._pick(0)
        elif char == "/" and self.show_log:
            self.filtering, self.log_filter = True, ""
            self._unpick()
        elif char == "\x1b" and self.show_log:
            if self.log_detail:
                self.log_detail = False
            else:
                self._unpick()
                self.log_filter = ""
        elif char == "?":
            self.show_help = not self.show_help
        elif char == " " and self.ptt:
            controls.send(PushToTalk())

    def _navigate(self, key: str) -> None:
        """PgUp/PgDn scroll the conversation; ↑/↓ pick a log entry when the log is open, else
        scroll by a line; Home/End go to the oldest/newest."""
        if self.show_log and key in ("up", "down"):
            picked = -1 if self.log_selected is None else self.log_selected
            self._pick(max(0, picked + (1 if key == "up" else -1)))
            return
        step = {"pgup": self._page, "pgdn": -self._page, "up": 1, "down": -1}.get(key)
        if step is not None:
            self.scroll = max(0, self.scroll + step)
        elif key == "end":
            self.scroll = 0
            self._unpick()
        elif key == "home":
            self.scroll = 10**9  # the layout stops at the first line

    def _pick(self, back: int) -> None:
        """Pick the log entry `back` lines above the newest; the log holds still meanwhile."""
        if self._frozen_log is None:
            self._frozen_log = self._log(self._snapshot().log)
        self.log_selected = back

    def _unpick(self) -> None:
        self.log_selected, self.log_detail, self._frozen_log = None, False, None

    def _log(self, log: Sequence[LogLine]) -> tuple[LogLine, ...]:
        if self._frozen_log is not None:
            return self._frozen_log
        needle = self.log_filter.lower()
        if not needle:
            return tuple(log)
        return tuple(line for line in log if needle in f"{line.type} {line.summary}".lower())

    # --- the frame

    def _turns(self, live: Sequence[Turn]) -> Sequence[Turn]:
        """The snapshot's newest turns, with the finished turns before them when scrolled."""
        if not self.scroll or not live:
            return live
        at = self._history_at.get(live[0].item_id)
        if at is None:  # the snapshot starts after every finished turn kept here
            return [*self._history, *live]
        return [*self._history[:at], *live]

    def view(self) -> View:
        """What to draw now: the call's snapshot and this screen's own state."""
        snap = self._snapshot()
        selected: int | None = None
        detail: str | None = None
        log = self._log(snap.log)
        if self.show_log and self.log_selected is not None and log:
            self.log_selected = min(self.log_selected, len(log) - 1)
            selected = len(log) - 1 - self.log_selected
            event = log[selected].event
            if self.log_detail:
                detail = pretty_json(event) if event is not None else "(no JSON kept)"
        text, error, since = self._notice
        if text and time.monotonic() - since > NOTICE_SECONDS:
            text = ""
        return View(
            model=snap.model,
            voice=snap.voice,
            phase=snap.phase,
            elapsed_s=snap.elapsed_s,
            left_s=snap.left_s,
            turns=self._turns(snap.turns),
            log=log,
            log_filter=self.log_filter if self.filtering or self.log_filter else None,
            filtering=self.filtering,
            show_log=self.show_log,
            show_help=self.show_help,
            mic_dbfs=snap.mic_dbfs,
            microphone=snap.microphone,
            speaker_dbfs=snap.speaker_dbfs,
            speaker=snap.speaker,
            muted=snap.muted,
            speaking=snap.speaking,
            tokens_in=snap.tokens_in,
            tokens_out=snap.tokens_out,
            cost_usd=snap.cost_usd,
            typing=self.typing,
            ptt=self.ptt,
            ptt_active=snap.ptt_active,
            notice=text,
            notice_error=error,
            echo_cancelling=snap.echo_cancelling,
            echo_removed_db=snap.echo_removed_db,
            rate_limits=snap.rate_limits,
            status_items=snap.status_items,
            question=snap.question,
            alert=snap.alert,
            alert_error=snap.alert_error,
            scroll=self.scroll,
            log_selected=selected,
            log_detail=detail,
            network=snap.network.status() if snap.network is not None else "",
            network_bad=snap.network is not None and snap.network.slow,
        )


class InlinePresenter(LivePresenter):
    """`--ui inline`, as LiveKit's `lk agent console`: finished turns are printed into the
    terminal's own scrollback (scroll and copy them with the terminal, keep them after the
    call); one live region at the bottom holds the turn in progress, the status and the keys."""

    def __init__(
        self, *, ptt: bool = False, console: Console | None = None, keys: bool = True
    ) -> None:
        super().__init__(ptt=ptt, console=console, keys=keys)
        self.live_options = {"screen": False, "transient": True}
        self._printed: set[str] = set()
        self._to_print: collections.deque[Turn] = collections.deque()

    def turns_finished(self, turns: list[Turn]) -> None:
        for turn in turns:  # printed above the live region by the next frame
            if turn.item_id not in self._printed:
                self._printed.add(turn.item_id)
                self._to_print.append(copy.copy(turn))

    def _navigate(self, key: str) -> None:
        if self.show_log and key in ("up", "down"):
            super()._navigate(key)  # the terminal scrolls the conversation itself

    def view(self) -> View:
        view = super().view()
        view.turns = [t for t in view.turns if t.item_id not in self._printed]
        view.scroll = 0
        return view

    def _flush_printed(self, width: int) -> None:
        lines: list[Text] = []
        while self._to_print:
            lines.extend(wrapped_turn(self._to_print.popleft(), width))
        if lines:
            self.console.print(Rows(lines), soft_wrap=True)

    def _has_output(self) -> bool:
        return bool(self._to_print)

    def _draw(self, live: Live, view: View) -> None:
        width, height = self.size()
        self._flush_printed(width)
        live.update(compose_inline(view, width, height), refresh=True)
        self.frames_drawn += 1

    def close(self, turns: Sequence[Turn]) -> None:
        """Take the live region away, then print what was not printed yet (cut turns marked as
        such): the scrollback then holds the whole conversation, once."""
        if self._closed:
            return
        self._closed = True
        if self._live is not None:
            with contextlib.suppress(Exception):
                self._live.stop()
        self._restore()
        width = self.size()[0]
        self._flush_printed(width)
        for turn in turns:
            if turn.item_id not in self._printed:
                self._printed.add(turn.item_id)
                ended = copy.copy(turn)
                ended.status = final_status(turn)
                self._to_print.append(ended)
        self._flush_printed(width)
