"""The longest event-loop stall while the live screen renders a long call (target <= 5 ms).

A 200-turn conversation with the event log open, 12 frames a second, while the call records
to a stereo WAV (a 20 ms microphone frame and a 20 ms assistant frame every 20 ms, as on a
call). A 1 ms ticker on the loop measures how late it wakes: that lateness is what the audio
on the same loop (RTP, the speaker, the microphone) would suffer.

Three ways in one run: `no screen` (recording only: what the machine itself costs the loop),
`before` draws each frame and writes the WAV on the loop (as rtc-voice did), `after` takes the
snapshot on the loop and draws and writes on threads (as it does now).
BENCH_ROUNDS rounds (default 5) of BENCH_SECONDS each (default 3); the machine's own noise
shows in `no screen`, measured in the same run.
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

SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
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

    jobs = [audio(), ticker()] + ([presenter.run()] if mode != "no screen" else [])
    tasks = [asyncio.create_task(c) for c in jobs]
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
        f"WAV: {ROUNDS} rounds of {SECONDS:g} s per way, interleaved (target <= {TARGET_MS:g} "
        f"ms); python {sys.version.split()[0]}, {os.cpu_count()} cores, load "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    modes = ("no screen", "before", "after")
    lags: dict[str, list[float]] = {mode: [] for mode in modes}
    longest: dict[str, list[float]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(ROUNDS):
            for mode in modes:
                with open(os.devnull, "w") as terminal_out:  # a terminal that swallows frames
                    round_lags, turns = asyncio.run(measure(mode, Path(tmp), terminal_out))
                assert turns == TURNS
                lags[mode] += round_lags
                longest[mode].append(max(round_lags))
    for mode in modes:
        ticks = sorted(lags[mode])
        p999 = ticks[int(len(ticks) * 0.999)]
        print(
            f"  {mode:9}: longest stall {max(ticks):6.2f} ms (median of rounds "
            f"{statistics.median(longest[mode]):5.2f}), p99.9 {p999:5.2f} ms, p99 "
            f"{ticks[int(len(ticks) * 0.99)]:4.2f} ms over {len(ticks)} ticks"
        )
    typical = statistics.median(longest["after"])
    verdict = "meets" if typical <= TARGET_MS else "misses"
    print(f"  after {verdict} the target: its typical longest stall is {typical:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
