"""`talk` figures on this machine.

1. Process start -> call ready (session.created printed) with `--local`; target <= 1.5 s median.
2. Client CPU during a full-duplex minute (server in its own process); target <= 10% of a core.
BENCH_SECONDS shortens 2.

Latency is measured by bench_mouth_to_ear.py, the way a person hears it (server in another
process, click detected on the speaker's output, stock aiortc client in the same run). The
receive-latency figure that used to be here ran the server in the client's own loop, waited
for the speaker before feeding audio (talk does not) and stopped at the callback.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rtc_voice.audio.pcm import silence, tone
from rtc_voice.audio.wavfile import WavWriter

SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
CLI = [sys.executable, "-m", "rtc_voice"]


def wav(path: Path, pcm: np.ndarray) -> Path:
    writer = WavWriter(path)
    writer.write(pcm)
    writer.close()
    return path


def start_to_ready(tmp: Path, runs: int = 7) -> None:
    quiet = wav(tmp / "quiet.wav", silence(500))
    times = []
    for _ in range(runs):
        began = time.monotonic()
        proc = subprocess.Popen(
            [
                *CLI,
                "talk",
                "--local",
                "--json",
                "--input",
                str(quiet),
                "--output",
                "none",
                "--max-duration",
                "2",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"talk --local did not start: {proc.communicate()[1].strip()}")
        first = json.loads(line)
        times.append(time.monotonic() - began)
        assert first["type"] == "session.created"
        proc.communicate(timeout=30)
    median = statistics.median(times)
    print(
        f"start -> call ready (--local): median {median:.2f} s, min {min(times):.2f} s, "
        f"max {max(times):.2f} s over {runs} runs (target <= 1.5 s: "
        f"{'met' if median <= 1.5 else 'MISSED'})"
    )


def client_cpu(tmp: Path, seconds: float) -> None:
    """`talk` against a separate `serve` process for `seconds`: speech in, speech out."""
    burst = np.concatenate([tone(300, 1200, dbfs=-20), silence(3800)])
    speech = wav(tmp / "turns.wav", np.tile(burst, int(seconds // 5) + 1))
    server = subprocess.Popen(
        [*CLI, "serve", "--port", "0"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    assert server.stderr is not None
    url = ""
    while not url:
        line = server.stderr.readline()
        if "listening on" in line:
            url = line.split("listening on ")[1].split()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    subprocess.run(
        [*CLI, "talk", "--base-url", url, "--input", str(speech), "--max-duration", str(seconds)],
        env={**os.environ, "OPENAI_API_KEY": "sk-bench-local-0000000000000000"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server.terminate()
    server.communicate(timeout=20)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    share = cpu / wall * 100
    print(
        f"client CPU, full duplex for {wall:.0f} s (speech in from a WAV, replies out to the "
        f"speaker, start-up included): {cpu:.1f} CPU-s = {share:.1f}% of one core "
        f"(target <= 10%: {'met' if share <= 10 else 'MISSED'})"
    )


def main() -> int:
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        start_to_ready(tmp)
        client_cpu(tmp, SECONDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
