"""Presenters for when the full screen cannot be used: finished turns as `you: …` /
`assistant: …` lines, or (with --json) one JSON object per conversation event from the server.

With a terminal on stdin (TERM=dumb, or stdout redirected) a line typed and sent with Enter
is a message; `/m`, `/i` and `/q` mute, interrupt and hang up; any other lone `/word` is
refused with the list (a line with more after it, like the local server's `/call NAME {json}`,
is a message), and `//` sends a message that starts with a slash (`//etc` sends `/etc`).
When the reader of stdout goes away (`| head -1`) the call ends quietly, as `git log | head`
does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from rtc_voice.call.controls import (
    CallSnapshot,
    Command,
    Controls,
    HangUp,
    Interrupt,
    SendText,
    ToggleMute,
)
from rtc_voice.conversation import FunctionCall, Turn, final_status

LINE_COMMANDS: dict[str, Command] = {
    "/m": ToggleMute(),
    "/mute": ToggleMute(),
    "/i": Interrupt(),
    "/interrupt": Interrupt(),
    "/q": HangUp("you hung up"),
    "/quit": HangUp("you hung up"),
}
LINE_HELP = "type a message and press Enter; /m mute, /i interrupt, /q or Ctrl-D hang up"


def turn_line(turn: Turn) -> str:
    if isinstance(turn, FunctionCall):
        note = ""
        if turn.approved_by is not None:
            took = f"{turn.duration_s:.2f} s, " if turn.duration_s else ""
            note = f" [{took}approval: {turn.approved_by}]"
        arguments = "" if turn.kind == "mcp_list_tools" else f"({turn.arguments})"
        return f"function: {turn.name}{arguments} -> {turn.output}{note}"
    who = "you" if turn.role == "user" else "assistant"
    status = final_status(turn)
    mark = "" if status == "completed" else f" [{status}]"
    return f"{who}: {turn.text}{mark}"


class LinePresenter:
    def __init__(
        self,
        out: TextIO | None = None,
        err: TextIO | None = None,
        *,
        read_lines: bool = False,
        note: str = "",
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.read_lines = read_lines  # a terminal on stdin: typed lines are messages
        self.note = note  # said once at the start (why this mode, what works)
        self.typing_hint = "Type a message and press Enter" if read_lines else ""
        self.output_closed = False  # the reader of stdout went away
        self.controls: Controls | None = None
        self._snapshot: Callable[[], CallSnapshot] | None = None
        self._pending = ""

    def bind(self, controls: Controls, snapshot: Callable[[], CallSnapshot]) -> None:
        self.controls = controls
        self._snapshot = snapshot

    def event(self, event: Mapping[str, Any], direction: str) -> None:
        pass

    def turns_finished(self, turns: list[Turn]) -> None:
        for turn in turns:
            self._print(turn_line(turn), self.out)

    def notice(self, text: str, *, error: bool = False) -> None:
        self._print(("error: " if error else "") + text, self.err)

    def _print(self, text: str, stream: TextIO) -> None:
        if self.output_closed:
            return
        try:
            print(text, file=stream, flush=True)
        except BrokenPipeError:
            self._output_gone(stream)

    def _output_gone(self, stream: TextIO) -> None:
        """The pipe's reader left: stop writing and end the call quietly (exit 0)."""
        self.output_closed = True
        with contextlib.suppress(OSError, ValueError):
            # what is still buffered would fail again when Python exits: send it nowhere
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        if self.controls is not None:
            self.controls.send(HangUp("the output pipe was closed"))

    async def run(self) -> None:
        if self.note:
            self._print(self.note, self.err)
        if not self.read_lines:
            return
        loop = asyncio.get_running_loop()
        fd = sys.stdin.fileno()
        try:
            loop.add_reader(fd, self._on_input, fd)
        except (NotImplementedError, ValueError, OSError):
            return
        try:
            await asyncio.Event().wait()  # lines arrive through the reader until cancelled
        finally:
            with contextlib.suppress(Exception):
                loop.remove_reader(fd)

    def _on_input(self, fd: int) -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:  # Ctrl-D or stdin closed
            asyncio.get_running_loop().remove_reader(fd)
            if self.controls is not None:
                self.controls.send(HangUp("you hung up (end of input)"))
            return
        self._pending += data.decode("utf-8", "replace")
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self.line(line)

    def line(self, text: str) -> None:
        """One typed line: a command (/m, /i, /q) or a message."""
        text = text.strip()
        if not text or self.controls is None:
            return
        if text.startswith("//"):  # the escape: a message that starts with a slash
            self.controls.send(SendText(text[1:]))
            return
        command = LINE_COMMANDS.get(text.lower())
        if isinstance(command, ToggleMute):
            self._toggle_mute()
            return
        if command is None and text.startswith("/") and len(text.split()) == 1:
            word = text  # a lone /word is a command; `/call NAME {json}` is for the server
            self._print(
                f"Unknown command {word}: /m mute, /i interrupt, /q hang up; "
                f"start with // to send a message that begins with /.",
                self.err,
            )
            return
        self.controls.send(command if command is not None else SendText(text))

    def _toggle_mute(self) -> None:
        """/m, said back on stderr: without a screen there is no MUTED badge to show it."""
        assert self.controls is not None
        was = self._snapshot().muted if self._snapshot is not None else None
        self.controls.send(ToggleMute())
        if self._snapshot is None:
            return
        now = self._snapshot().muted
        if now == was:
            said = "The microphone is not open yet: nothing to mute."
        elif now:
            said = "Muted: silence is sent; /m again to unmute."
        else:
            said = "Unmuted: your microphone is sent again."
        self._print(said, self.err)

    def close(self, turns: Sequence[Turn]) -> None:
        pass


class JsonPresenter(LinePresenter):
    """Server events, and rtc-voice's own `rtc_voice.*` lines (network stats every second)."""

    def event(self, event: Mapping[str, Any], direction: str) -> None:
        if direction in ("server", "local"):
            self._print(json.dumps(event, ensure_ascii=False), self.out)

    def turns_finished(self, turns: list[Turn]) -> None:
        pass
