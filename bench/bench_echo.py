"""Echo cancellation figures in the echo room (tests/echo_room.py), each with and without it.

1. False barge-ins per minute of assistant speech: `talk --local --json --say LONG` in the room,
   nobody speaking, at echo delays 30 / 60 / 150 ms and levels -6 / -10 / -20 dB; target 0.
2. Echo removed, steady (seconds 2 to the end of an 8 s spoken reply), by AEC3 alone and by
   AEC3 + the residual gate (what is sent); target >= 35 dB.
3. Barge-in detection: the user starts speaking 4 s into a reply (paplay into the room) ->
   `input_audio_buffer.speech_started` arrives; target <= 300 ms. The baseline without
   cancellation mutes the echo path (with echo, replies cut themselves off before).
4. Canceller CPU, % of one core (the echo path's thread CPU time per second of audio, far-end
   drain and gate included); target <= 2%.
5. Added microphone latency: the echo path's time per 20 ms frame (it holds no audio back);
   target <= 15 ms.

BENCH_ECHO_GRID=quick measures only 60 ms / -10 dB (about a minute instead of eight).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.echo_room

from tests.echo_room import ASSISTANT_VOICE, EchoRoom, speech

QUICK = os.environ.get("BENCH_ECHO_GRID", "") == "quick"
DELAYS = (60,) if QUICK else (30, 60, 150)
LEVELS = (-10.0,) if QUICK else (-6.0, -10.0, -20.0)
CALL_SECONDS = 20.0
CLI = [sys.executable, "-m", "rtc_voice"]
LONG = (
    "Please tell me, slowly and carefully, about the long history of the old stone bridge over "
    "the river, about the people who built it, about the floods, the repairs, the festivals "
    "held on it every summer, and about why the town still loves it so much, even though the "
    "new road bridge carries all of the traffic now."
)
REPLY = (
    "The old stone bridge was built three hundred years ago by the people of the town, who "
    "carried every stone down from the hills on their backs."
)


def read(path: Path) -> np.ndarray:
    with wave.open(str(path)) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2").copy()


def call(
    room: EchoRoom, aec: bool, *, user: Path | None = None, seconds: float = CALL_SECONDS
) -> list[tuple[float, dict[str, Any]]]:
    """One `talk` call in the room; the server events with their arrival times. With `user`,
    the user speaks 4 s into the first reply (the event list then carries a `spoke` marker)."""
    args = [*CLI, "talk", "--local", "--json", "--say", LONG, "--max-duration", str(seconds)]
    if not aec:
        args.append("--no-aec")
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, **room.env, "XDG_CONFIG_HOME": home}
        proc = subprocess.Popen(
            args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        events: list[tuple[float, dict[str, Any]]] = []
        start = time.monotonic()
        timers: list[threading.Timer] = []
        for line in proc.stdout:
            now = time.monotonic() - start
            event = json.loads(line)
            events.append((now, event))
            if user is not None and event["type"] == "output_audio_buffer.started" and not timers:

                def speak() -> None:
                    events.append((time.monotonic() - start, {"type": "spoke"}))
                    room.say(user).wait(15)

                timers.append(threading.Timer(4.0, speak))
                timers[0].start()
        proc.wait(30)
        for timer in timers:
            timer.join(20)
    return sorted(events, key=lambda pair: pair[0])


def false_barge_ins(events: list[tuple[float, dict[str, Any]]]) -> tuple[int, float]:
    """(speech starts while the assistant was speaking, seconds of assistant speech)."""
    speaking_since: float | None = None
    speech_s, false_starts = 0.0, 0
    for t, event in events:
        kind = event["type"]
        if kind == "output_audio_buffer.started":
            speaking_since = t
        elif kind == "input_audio_buffer.speech_started" and speaking_since is not None:
            false_starts += 1
        elif kind == "response.done" and speaking_since is not None:
            speech_s += t - speaking_since
            speaking_since = None
    return false_starts, speech_s


def barge_in_ms(events: list[tuple[float, dict[str, Any]]], onset_s: float) -> float | None:
    spoke = next((t for t, e in events if e["type"] == "spoke"), None)
    if spoke is None:
        return None
    heard = next(
        (
            t
            for t, e in events
            if e["type"] == "input_audio_buffer.speech_started" and t >= spoke + onset_s
        ),
        None,
    )
    return None if heard is None else (heard - spoke - onset_s) * 1000


async def in_process(reply: np.ndarray) -> dict[str, float]:
    """Play a spoken reply through the room with the echo path in place; measure it."""
    from rtc_voice.audio import devices
    from rtc_voice.audio.echo import EchoPath, EchoStage, ResidualGate, WebRtcCanceller
    from rtc_voice.audio.pcm import FRAME_SAMPLES, rms_dbfs

    sink = devices.OutputSink(devices.select(None, "output"))
    source = devices.InputSource(devices.select(None, "input"), max_frames=100_000)
    measured = EchoStage(WebRtcCanceller(), ResidualGate(attenuation_db=0.0))
    path = EchoPath(source, sink, measured)
    gate = ResidualGate()
    raw: list[np.ndarray] = []
    cancelled: list[np.ndarray] = []
    sent: list[np.ndarray] = []
    spent: list[float] = []  # wall time per frame: the latency it adds
    cpu: list[float] = []  # this thread's CPU time per frame

    def process(near: np.ndarray) -> np.ndarray:
        begin, begin_cpu = time.perf_counter(), time.thread_time()
        out = path(near)
        spent.append(time.perf_counter() - begin)
        cpu.append(time.thread_time() - begin_cpu)
        raw.append(near)
        cancelled.append(out)
        # what the gate would send (same decisions as in a call, measured separately)
        gate.echo_heard = measured.gate.echo_heard
        gated = np.concatenate(
            [gate.apply(out[i : i + 480], rms_dbfs(out[i : i + 480])) for i in (0, 480)]
        )
        sent.append(gated)
        return out

    original_far = measured.gate.far

    def far(level: float) -> None:
        original_far(level)
        gate.far(level)

    measured.gate.far = far  # type: ignore[method-assign]
    source.process = process
    try:
        sink.start()
        source.start()
        await asyncio.wait_for(sink.wait_running(), 10)
        await asyncio.sleep(0.3)
        first = len(raw)
        start = time.monotonic()
        for n, i in enumerate(range(0, len(reply), FRAME_SAMPLES)):
            sink.write(reply[i : i + FRAME_SAMPLES])
            await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - time.monotonic()))
        await asyncio.sleep(0.3)
    finally:
        path.close()
        source.close()
        sink.close()
    steady = slice(first + 100, len(raw) - 15)  # from 2 s in to the end of the reply
    before = np.concatenate(raw[steady])
    return {
        "echo_dbfs": rms_dbfs(before),
        "removed_aec_db": rms_dbfs(before) - rms_dbfs(np.concatenate(cancelled[steady])),
        "removed_sent_db": rms_dbfs(before) - rms_dbfs(np.concatenate(sent[steady])),
        "cpu_percent": 100 * sum(cpu) / (len(cpu) * 0.02),
        "frame_ms_mean": 1000 * statistics.fmean(spent),
        "frame_ms_max": 1000 * max(spent),
    }


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-echo-"))
    reply = read(speech(REPLY, work / "reply.wav", voice=ASSISTANT_VOICE, wpm=170))
    user = speech("Excuse me, I have a question about that.", work / "user.wav")
    user_pcm = read(user)
    onset_s = int(np.argmax(np.abs(user_pcm) > 1000)) / 48000
    room = EchoRoom.start(60, -10.0)
    os.environ.update(room.env)  # this process's PortAudio talks to the room
    print("machine: 2 cores shared with other agents' builds and tests; timings are loaded")
    print(f"grid: delays {DELAYS} ms x levels {LEVELS} dB, {CALL_SECONDS:g} s calls")
    try:
        rows = []
        for delay in DELAYS:
            for level in LEVELS:
                room.set_echo(delay, level)
                row: dict[str, Any] = {"delay": delay, "level": level}
                for aec in (True, False):
                    starts, speech_s = false_barge_ins(call(room, aec))
                    row[aec] = (starts, speech_s)
                row["inner"] = asyncio.run(in_process(reply))
                rows.append(row)
                on, off = row[True], row[False]
                inner = row["inner"]
                print(
                    f"{delay:4d} ms {level:5.0f} dB | false barge-ins/min of assistant speech: "
                    f"AEC {60 * on[0] / max(on[1], 1e-9):5.1f} ({on[0]} in {on[1]:.1f} s), "
                    f"none {60 * off[0] / max(off[1], 1e-9):6.1f} ({off[0]} in {off[1]:.1f} s)"
                    f" | echo {inner['echo_dbfs']:.0f} dBFS, removed: AEC3 "
                    f"{inner['removed_aec_db']:.1f} dB, sent (with gate) "
                    f"{inner['removed_sent_db']:.1f} dB, none 0 dB",
                    flush=True,
                )
        for aec in (True, False):
            # without cancellation, replies cut themselves off in an echoing room: the baseline
            # is the same call with the speaker-to-microphone path muted
            room.set_echo(60, -10.0 if aec else -200.0)
            times = [barge_in_ms(call(room, aec, user=user, seconds=12), onset_s) for _ in (1, 2)]
            shown = ", ".join("missed" if t is None else f"{t:.0f} ms" for t in times)
            label = "AEC, echo at -10 dB" if aec else "none, no echo path"
            print(
                f"barge-in, user speech onset (paplay started + onset in the file) -> "
                f"speech_started event, {label}: {shown}"
            )
        cpu = [r["inner"]["cpu_percent"] for r in rows]
        mean_ms = [r["inner"]["frame_ms_mean"] for r in rows]
        max_ms = [r["inner"]["frame_ms_max"] for r in rows]
        print(
            f"canceller CPU: {statistics.fmean(cpu):.2f}% of a core (max {max(cpu):.2f}%); none: 0%"
        )
        print(
            f"added microphone latency: {statistics.fmean(mean_ms):.2f} ms per frame on average "
            f"(worst frame {max(max_ms):.1f} ms), no audio held back; none: 0 ms"
        )
    finally:
        room.stop()


if __name__ == "__main__":
    main()
