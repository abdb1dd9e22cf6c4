"""Transcripts written as the call goes: `.jsonl` or `.md`, appended and flushed per completed
turn, in conversation order (a turn waits for those before it), file mode 0600.

The file is only checked when the writer is made and opened at the first line to write, so a
run that fails before its call connects leaves an existing transcript untouched. With a
`WriterThread` the writes happen off the event loop; the text is built on it."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from rtc_voice.conversation import Conversation, FunctionCall, Message, Turn
from rtc_voice.errors import FileError, UsageError
from rtc_voice.sinks import WriterThread


def _iso(ts: float | None) -> str | None:
    return (
        datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds") if ts else None
    )


class TranscriptWriter:
    def __init__(self, path: Path, writer: WriterThread | None = None) -> None:
        suffix = path.suffix.lower()
        if suffix not in (".jsonl", ".md"):
            raise UsageError(
                f"Cannot tell the transcript format of {path}.",
                hint="Name it .jsonl (one JSON object per line) or .md (Markdown).",
            )
        self.path = path
        self.markdown = suffix == ".md"
        _check_writable(path)
        self._file: TextIO | None = None
        self._writer = writer
        self._written: set[str] = set()
        self._header_done = False

    def _emit(self, text: str) -> None:
        if self._writer is not None:
            self._writer.submit(self._write, text)
        else:
            self._write(text)

    def _write(self, text: str) -> None:
        if self._file is None:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            except OSError as exc:
                raise FileError(
                    f"Cannot write the transcript {self.path}: {exc.strerror or exc}."
                ) from None
            self._file = os.fdopen(fd, "a", encoding="utf-8")
        self._file.write(text)
        self._file.flush()

    def _header(self, conversation: Conversation) -> None:
        if self._header_done or not self.markdown:
            return
        self._header_done = True
        when = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")
        self._emit(f"# rtc-voice call, {when} ({conversation.model} {conversation.voice})\n\n")

    def _write_turn(self, turn: Turn, status: str) -> None:
        self._written.add(turn.item_id)
        if isinstance(turn, FunctionCall):
            record: dict[str, Any] = {
                "type": "function_call",
                "name": turn.name,
                "call_id": turn.call_id,
                "arguments": turn.arguments,
                "output": turn.output,
            }
            if self.markdown:
                self._emit(
                    f"- **Function call** `{turn.name}({turn.arguments})` → `{turn.output}`\n\n"
                )
            else:
                self._emit(json.dumps(record, ensure_ascii=False) + "\n")
            return
        if self.markdown:
            who = "You" if turn.role == "user" else "Assistant"
            when = datetime.fromtimestamp(turn.started_at).strftime("%H:%M:%S")
            mark = "" if status == "completed" else f" *({status})*"
            typed = " (typed)" if turn.typed else ""
            self._emit(f"**{who}**{typed} {when}: {turn.text}{mark}\n\n")
            return
        self._emit(
            json.dumps(
                {
                    "type": "turn",
                    "role": turn.role,
                    "item_id": turn.item_id,
                    "previous_item_id": turn.previous_item_id,
                    "text": turn.text,
                    "status": status,
                    "started_at": _iso(turn.started_at),
                    "ended_at": _iso(turn.ended_at),
                },
                ensure_ascii=False,
            )
            + "\n"
        )

    def update(self, conversation: Conversation) -> None:
        """Write every finished turn whose predecessors are all written."""
        self._header(conversation)
        for turn in conversation.newly_final(self._written):
            self._write_turn(turn, turn.status)

    def finish(self, conversation: Conversation, cost_usd: float | None) -> None:
        """At the end of the call: everything left (unfinished turns marked), then usage."""
        self._header(conversation)
        for turn in conversation.turns():
            if turn.item_id not in self._written:
                status = turn.status
                if status == "in_progress":
                    status = "interrupted" if turn.role == "assistant" else "failed"
                if isinstance(turn, Message) and turn.awaiting_transcript:
                    status = "failed"  # its transcript never arrived
                self._write_turn(turn, status)
        usage = conversation.usage.as_json()
        if self.markdown:
            cost = f", about ${cost_usd:.4f}" if cost_usd is not None else ""
            plural = "" if usage["responses"] == 1 else "s"
            self._emit(
                f"---\nUsage: {usage['input_tokens']} input and {usage['output_tokens']}"
                f" output tokens over {usage['responses']} response{plural}{cost}.\n"
            )
        else:
            self._emit(json.dumps({"type": "usage", **usage, "cost_usd": cost_usd}) + "\n")
        self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.submit(self._close, cleanup=True)
        else:
            self._close()

    def _close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()


def _check_writable(path: Path) -> None:
    """Fail now, before any call, if the transcript could not be written later."""
    problem = None
    if path.is_dir():
        problem = "it is a directory"
    elif path.exists():
        if not os.access(path, os.W_OK):
            problem = "permission denied"
    elif not path.parent.is_dir():
        problem = f"the folder {path.parent} does not exist"
    elif not os.access(path.parent, os.W_OK | os.X_OK):
        problem = f"the folder {path.parent} is not writable"
    if problem:
        raise FileError(
            f"Cannot write the transcript {path}: {problem}.",
            hint="Pick another --transcript path.",
        )
