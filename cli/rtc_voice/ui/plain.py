"""Presenters for when stdout is not a terminal: finished turns as `you: …` / `assistant: …`
lines, or (with --json) one JSON object per conversation event from the server."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from rtc_voice.call.controls import CallSnapshot, Controls
from rtc_voice.conversation import FunctionCall, Turn


def turn_line(turn: Turn) -> str:
    if isinstance(turn, FunctionCall):
        return f"function: {turn.name}({turn.arguments}) -> {turn.output}"
    who = "you" if turn.role == "user" else "assistant"
    mark = "" if turn.status == "completed" else f" [{turn.status}]"
    return f"{who}: {turn.text}{mark}"


class LinePresenter:
    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def bind(self, controls: Controls, snapshot: Callable[[], CallSnapshot]) -> None:
        self.controls = controls

    def event(self, event: Mapping[str, Any], direction: str) -> None:
        pass

    def turns_finished(self, turns: list[Turn]) -> None:
        for turn in turns:
            print(turn_line(turn), file=self.out, flush=True)

    def notice(self, text: str, *, error: bool = False) -> None:
        print(("error: " if error else "") + text, file=self.err, flush=True)

    async def run(self) -> None:
        pass

    def close(self, turns: Sequence[Turn]) -> None:
        pass


class JsonPresenter(LinePresenter):
    def event(self, event: Mapping[str, Any], direction: str) -> None:
        if direction == "server":
            print(json.dumps(event, ensure_ascii=False), file=self.out, flush=True)

    def turns_finished(self, turns: list[Turn]) -> None:
        pass
