"""The longest event-loop stall while the live screen renders a long call (target <= 5 ms).

A 200-turn conversation with the event log open, 12 frames a second, while the call records
to a stereo WAV (a 20 ms microphone frame and a 20 ms assistant frame every 20 ms, as on a
call). A 1 ms ticker on the loop measures how late it wakes: that lateness is what the audio
on the same loop (RTP, the speaker, the microphone) would suffer.

Two ways in one run: `before` draws each frame and writes the WAV on the loop (as rtc-voice
did), `after` takes the snapshot on the loop and draws and writes on threads (as it does now).
BENCH_SECONDS sets the length of each (default 10).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.live import Live

from rtc_voice.audio.io import Recorder
from rtc_voice.audio.pcm import tone
from rtc_voice.call.supervisor import CallSupervisor, TalkOptions
from rtc_voice.config import Settings
from rtc_voice.sinks import WriterThread
from rtc_voice.ui import terminal
from rtc_voice.ui.plain import LinePresenter
from rtc_voice.ui.render import screen

SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
TURNS = 200
TARGET_MS = 5.0


def long_call() -> CallSupervisor:
    """A call object holding a 200-turn conversation and a full event log (not running)."""
    call = CallSupervisor(Settings(), TalkOptions(), LinePresenter(), api_key=None)
    previous = None
    words = "that is a fair question and here is a longer answer that wraps " * 3
    for n in range(TURNS // 2):
        for role, item_id, text in (
            ("user", f"u{n}", f"question {n}: what about the weather tomorrow?"),
            ("assistant", f"a{n}", f"answer {n}: {words}"),
        ):
            content_type = "input_text" if role == "user" else "output_text"
            event = {
                "type": "conversation.item.done",
                "event_id": f"e{item_id}",
                "previous_item_id": previous,
                "item": {
                    "id": item_id,
                    "type": "message",
                    "role": role,
                    "status": "completed",
                    "content": [{"type": content_type, "text": text}],
                },
            }
            call.conversation.apply(event)
            call.log.add(event, "server")
            previous = item_id
    return call


class OnLoop(terminal.LivePresenter):
    """The old way: every frame laid out and written on the event loop."""

    async def run(self) -> None:
        with Live(console=self.console, screen=True, auto_refresh=False) as live:
            while True:
                width, height = self.console.size
                live.update(screen(self.view(), width, height), refresh=True)
                await asyncio.sleep(1 / terminal.FPS)


async def measure(mode: str, tmp: Path, terminal_out: TextIO) -> tuple[list[float], int]:
    call = long_call()
    console = Console(
        file=terminal_out, force_terminal=True, width=120, height=40, color_system="truecolor"
    )
    presenter_class = OnLoop if mode == "before" else terminal.LivePresenter
    presenter = presenter_class(console=console, keys=False)
    presenter.show_log = True
    presenter.bind(call, call.snapshot)
    writer = WriterThread() if mode == "after" else None
    recorder = Recorder(tmp / f"{mode}.wav", writer)
    frame = tone(440, 20)
    lags: list[float] = []

    async def audio() -> None:  # what the call's tracks do every 20 ms
        next_at = time.perf_counter()
        while True:
            recorder.assistant(frame)
            recorder.microphone(frame)
            next_at += 0.02
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    async def ticker() -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append((time.perf_counter() - started - 0.001) * 1000)

    tasks = [asyncio.create_task(c) for c in (presenter.run(), audio(), ticker())]
    await asyncio.sleep(SECONDS)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    recorder.close()
    if writer is not None:
        writer.close()
    return lags[10:], len(call.conversation.turns())


def main() -> int:
    print(
        f"event-loop stall while rendering a {TURNS}-turn call with the log open, recording to "
        f"WAV, {SECONDS:g} s each (target <= {TARGET_MS:g} ms); python {sys.version.split()[0]}"
    )
    worst_after = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("before", "after"):
            with open(os.devnull, "w") as terminal_out:  # a terminal that swallows the frames
                lags, turns = asyncio.run(measure(mode, Path(tmp), terminal_out))
            assert turns == TURNS
            lags.sort()
            p99 = lags[int(len(lags) * 0.99)]
            print(
                f"  {mode:6}: longest stall {max(lags):6.2f} ms, p99 {p99:5.2f} ms, "
                f"median {statistics.median(lags):4.2f} ms over {len(lags)} ticks"
            )
            if mode == "after":
                worst_after = max(lags)
    verdict = "meets" if worst_after <= TARGET_MS else "misses"
    print(f"  after {verdict} the target (longest stall {worst_after:.2f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
