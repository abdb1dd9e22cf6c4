"""What a person meets on the call screen: how soon the first frame appears, and what one frame
of a 200-turn call costs to lay out and write.

1. Time to the first frame (target <= 0.3 s): `rtc-voice talk --local --input SILENCE.wav
   --output none` runs in a real pseudo-terminal (120x40, TERM=xterm-256color); the clock
   starts before the process is spawned and stops when the screen shows the header. Also:
   until `connected`.
   Baseline in the same run: `rtc-voice --version` (the interpreter and the CLI's own imports,
   which every frame must wait for anyway).
2. Render cost per frame (target <= 2 ms): a 200-turn conversation with the event log open, at
   120x40 and 80x24: the snapshot taken on the loop, then the layout and the write of the
   frame to a terminal (what the screen's worker thread does each frame); the first frame at
   a new width (nothing cached) is reported too.

BENCH_SRC=DIR puts another source tree first on the path for part 1 (to measure an older
version the same way: `git archive <rev> cli | tar -x -C DIR`, then BENCH_SRC=DIR/cli).
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from io import StringIO

from rich.console import Console

from rtc_voice.ui import render, terminal

RUNS = int(os.environ.get("BENCH_RUNS", "7"))
FRAMES = int(os.environ.get("BENCH_FRAMES", "300"))
FIRST_FRAME_TARGET_S = 0.3
FRAME_TARGET_MS = 2.0


def first_frame(home: str, quiet: str) -> tuple[float, float]:
    """Seconds from spawn to the header on screen, and to `connected`."""
    main_fd, child_fd = pty.openpty()
    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "XDG_CONFIG_HOME": home}
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    if os.environ.get("BENCH_SRC"):
        env["PYTHONPATH"] = os.environ["BENCH_SRC"]
    talk = [sys.executable, "-m", "rtc_voice", "talk", "--local", "--input", quiet]
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*talk, "--output", "none"],
        stdin=child_fd,
        stdout=child_fd,
        stderr=child_fd,
        env=env,
        start_new_session=True,
    )
    os.close(child_fd)
    seen = b""
    header_at = connected_at = float("nan")
    deadline = start + 20
    try:
        while time.perf_counter() < deadline:
            ready, _, _ = select.select([main_fd], [], [], 0.01)
            if not ready:
                continue
            try:
                seen += os.read(main_fd, 65536)
            except OSError:
                break
            now = time.perf_counter() - start
            if header_at != header_at and b"rtc-voice" in seen:
                header_at = now
            if b"connected" in seen:
                connected_at = now
                break
    finally:
        os.write(main_fd, b"q")
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(main_fd)
    return header_at, connected_at


def version_time() -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "rtc_voice", "--version"], capture_output=True, check=True
    )
    return time.perf_counter() - start


def frame_cost(width: int, height: int) -> tuple[float, float, float, float]:
    """Median ms per frame on the loop (snapshot) and off it (layout + write), the first
    frame at this width, and the worst steady frame."""
    sys.path.insert(0, os.path.dirname(__file__))
    from bench_render_stall import long_call  # the same 200-turn call as the stall benchmark

    call = long_call()
    out = StringIO()
    console = Console(
        file=out, force_terminal=True, width=width, height=height, color_system="truecolor"
    )
    presenter = terminal.LivePresenter(console=console, keys=False)
    presenter.show_log = True
    presenter.bind(call, call.snapshot)
    render._wrapped.clear()
    started = time.perf_counter()
    console.print(render.compose(presenter.view(), width, height).renderable)
    first = (time.perf_counter() - started) * 1000
    on_loop: list[float] = []
    off_loop: list[float] = []
    for _ in range(FRAMES):
        t0 = time.perf_counter()
        view = presenter.view()
        t1 = time.perf_counter()
        console.print(render.compose(view, width, height).renderable)
        t2 = time.perf_counter()
        out.seek(0)
        out.truncate()
        on_loop.append((t1 - t0) * 1000)
        off_loop.append((t2 - t1) * 1000)
    return statistics.median(on_loop), statistics.median(off_loop), first, max(off_loop)


def main() -> int:
    print(
        f"call screen: python {sys.version.split()[0]}, {os.cpu_count()} cores, load "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
        + (f", source {os.environ['BENCH_SRC']}" if os.environ.get("BENCH_SRC") else "")
    )
    from rtc_voice.audio.pcm import silence
    from rtc_voice.audio.wavfile import WavWriter

    with tempfile.TemporaryDirectory() as home:
        quiet = os.path.join(home, "quiet.wav")
        writer = WavWriter(quiet)  # (older versions cannot take --input none)
        writer.write(silence(30_000))
        writer.close()
        first_frame(home, quiet)  # warm the disk cache
        frames, connects, versions = [], [], []
        for _ in range(RUNS):
            header, connected = first_frame(home, quiet)
            frames.append(header)
            connects.append(connected)
            versions.append(version_time())
    f, c, v = (statistics.median(x) for x in (frames, connects, versions))
    print(
        f"  first frame: median {f:.3f} s (min {min(frames):.3f}, max {max(frames):.3f}) over "
        f"{RUNS} runs; connected {c:.3f} s; baseline `rtc-voice --version` {v:.3f} s "
        f"(first frame = {f / v:.2f}x the baseline); target <= {FIRST_FRAME_TARGET_S} s: "
        + ("met" if f <= FIRST_FRAME_TARGET_S else "MISSED")
    )
    for width, height in ((120, 40), (80, 24)):
        loop_ms, frame_ms, first_ms, worst_ms = frame_cost(width, height)
        print(
            f"  200 turns, log open, {width}x{height}: {loop_ms:.2f} ms on the loop (snapshot) + "
            f"{frame_ms:.2f} ms layout and write (median of {FRAMES}; worst {worst_ms:.2f}, "
            f"first at this width {first_ms:.1f} ms); target <= {FRAME_TARGET_MS} ms per frame: "
            + ("met" if loop_ms + frame_ms <= FRAME_TARGET_MS else "MISSED")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
