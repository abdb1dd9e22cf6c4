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

from rtc_voice.conversation import Conversation, FunctionCall, Turn, final_status
from rtc_voice.errors import FileError
from rtc_voice.paths import check_writable
from rtc_voice.sinks import WriterThread


def _iso(ts: float | None) -> str | None:
    return (
        datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds") if ts else None
    )


class TranscriptWriter:
    def __init__(self, path: Path, writer: WriterThread | None = None) -> None:
        suffix = path.suffix.lower()
        if suffix not in (".jsonl", ".md"):
            raise FileError(
                f"Cannot tell the transcript format of {path}.",
                hint="Name it .jsonl (one JSON object per line) or .md (Markdown).",
            )
        self.path = path
        self.markdown = suffix == ".md"
        check_writable(path, "transcript", hint="Pick another --transcript path.")
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
            if self.markdown and os.fstat(fd).st_size > 0:
                text = "\n" + text  # after an earlier call: this call's heading stands apart
            self._file = os.fdopen(fd, "a", encoding="utf-8")
        self._file.write(text)
        self._file.flush()

    def _header(self, conversation: Conversation) -> None:
        if self._header_done or not self.markdown:
            return
        self._header_done = True
        when = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")
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
                "duration_s": None if turn.duration_s is None else round(turn.duration_s, 3),
                "approved_by": turn.approved_by,
                "item_id": turn.item_id,
                "previous_item_id": turn.previous_item_id,
            }
            if self.markdown:
                took = "" if turn.duration_s is None else f", {turn.duration_s:.2f} s"
                who = f" (approval: {turn.approved_by}{took})" if turn.approved_by else ""
                self._emit(
                    f"- **Function call** `{turn.name}({turn.arguments})` → `{turn.output}`"
                    f"{who}\n\n"
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

    def gap(self, conversation: Conversation, reason: str, lost_at: float, seconds: float) -> None:
        """The call was lost and resumed on a new one: write what came before, then mark it."""
        self.update(conversation)
        if self.markdown:
            self._emit(f"*— {reason}; resumed after {seconds:.1f} s —*\n\n")
        else:
            self._emit(
                json.dumps(
                    {
                        "type": "gap",
                        "reason": reason,
                        "lost_at": _iso(lost_at),
                        "seconds": round(seconds, 3),
                    }
                )
                + "\n"
            )

    def finish(
        self,
        conversation: Conversation,
        cost_usd: float | None,
        network: dict[str, Any] | None = None,
    ) -> None:
        """At the end of the call: everything left (unfinished turns marked), the network
        summary (turn latency, loss, reconnects), then usage."""
        self._header(conversation)
        for turn in conversation.turns():
            if turn.item_id not in self._written:
                if turn.ended_at is None:
                    turn.ended_at = conversation.clock()  # cut by the end of the call
                self._write_turn(turn, final_status(turn))
        if network is not None:
            self._network(network)
        usage = conversation.usage.as_json()
        if self.markdown:
            cost = f", about ${cost_usd:.4f}" if cost_usd is not None else ""
            plural = "" if usage["responses"] == 1 else "s"
            self._emit(
                f"---\n\nUsage: {usage['input_tokens']} input and {usage['output_tokens']}"
                f" output tokens over {usage['responses']} response{plural}{cost}.\n"
            )
        else:
            self._emit(json.dumps({"type": "usage", **usage, "cost_usd": cost_usd}) + "\n")
        self.close()

    def _network(self, summary: dict[str, Any]) -> None:
        if not self.markdown:
            self._emit(json.dumps(summary) + "\n")
            return
        parts = []
        if summary.get("turn_latency_p50_ms") is not None:
            parts.append(
                f"turn latency p50 {summary['turn_latency_p50_ms']:.0f} ms, "
                f"p95 {summary['turn_latency_p95_ms']:.0f} ms over {summary['turns']} "
                + ("turn" if summary["turns"] == 1 else "turns")
            )
        if summary.get("loss_pct") is not None:
            parts.append(f"{summary['loss_pct']:.1f}% of packets lost")
        parts.append(f"{summary['reconnects']} reconnects, {summary['rollovers']} rollovers")
        # blank lines around it: a line right above `---` would become a Markdown heading
        self._emit("---\n\nNetwork: " + "; ".join(parts) + ".\n\n")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.submit(self._close, cleanup=True)
        else:
            self._close()

    def _close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
