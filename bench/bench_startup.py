"""How long `rtc-voice --help` takes, wall clock, over repeated runs (target: median < 300 ms).

It runs with its bytecode compiled, as installed (bench/installed.py)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from installed import installed_env

RUNS = 15
TARGET_MS = 300.0


def main() -> int:
    exe = Path(sys.executable).with_name("rtc-voice")
    env = installed_env()
    subprocess.run([exe, "--help"], capture_output=True, check=True, env=env)  # warm the caches
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run([exe, "--help"], capture_output=True, check=True, env=env)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    median = statistics.median(times)
    print(
        f"rtc-voice --help: median {median:.0f} ms, min {times[0]:.0f} ms, "
        f"max {times[-1]:.0f} ms over {RUNS} runs (target < {TARGET_MS:.0f} ms: "
        f"{'met' if median < TARGET_MS else 'MISSED'}, {TARGET_MS / median:.1f}x headroom)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
