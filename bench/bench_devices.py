"""`rtc-voice devices` against the bare PortAudio query it wraps, interleaved in one run.

Wall clock from process start to exit, the way a person meets it, for
  - `python -c "import sounddevice; sounddevice.query_devices()"` (the floor: PortAudio itself),
  - `rtc-voice devices` (the table) and `rtc-voice devices --json`.
Reports medians over RUNS (env BENCH_RUNS, default 15) and each as a ratio to the bare query.
BENCH_COMPARE_CLI=DIR adds both rtc-voice commands importing rtc_voice from DIR (another
checkout's source root), to compare two versions in one run.
Every command runs with its bytecode compiled, as installed (bench/installed.py).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from installed import installed_env

RUNS = int(os.environ.get("BENCH_RUNS", "15"))
EXE = str(Path(sys.executable).with_name("rtc-voice"))
COMMANDS = {
    "bare PortAudio query": [
        sys.executable,
        "-c",
        "import sounddevice; sounddevice.query_devices()",
    ],
    "rtc-voice devices": [EXE, "devices"],
    "rtc-voice devices --json": [EXE, "devices", "--json"],
}


def main() -> int:
    env = {**installed_env(), "COLUMNS": "120"}  # bytecode compiled once, as installed
    other_cli = os.environ.get("BENCH_COMPARE_CLI")
    if other_cli:
        for name, argv in list(COMMANDS.items())[1:]:
            COMMANDS[f"{name} ({other_cli})"] = ["env", f"PYTHONPATH={other_cli}", *argv]
    for argv in COMMANDS.values():  # warm the disk cache; fail loudly if one does not work
        subprocess.run(argv, capture_output=True, check=True, env=env)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(RUNS):
        for name, argv in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=True, env=env)
            times[name].append((time.perf_counter() - start) * 1000)
    floor = statistics.median(times["bare PortAudio query"])
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"{name}: median {median:.0f} ms (min {min(values):.0f}, max {max(values):.0f}) "
            f"over {RUNS} interleaved runs = {median / floor:.2f}x the bare query"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
