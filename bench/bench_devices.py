"""`rtc-voice devices` against the bare PortAudio query it wraps, interleaved in one run.

Wall clock from process start to exit, the way a person meets it, for
  - `python -c "import sounddevice; sounddevice.query_devices()"` (the floor: PortAudio itself),
  - `rtc-voice devices` (the table) and `rtc-voice devices --json`.
Each runs twice per round: with its output on a pipe (as a script meets it) and on a terminal
(a pseudo-terminal, 120x40, TERM=xterm-256color: the table as a person sees it, in colour).
Reports medians over RUNS (env BENCH_RUNS, default 15) and each as a ratio to the bare query
run the same way.
BENCH_COMPARE_CLI=DIR adds both rtc-voice commands importing rtc_voice from DIR (another
checkout's source root), to compare two versions in one run.
Every command runs with its bytecode compiled, as installed (bench/installed.py).
"""

from __future__ import annotations

import fcntl
import os
import pty
import statistics
import struct
import subprocess
import sys
import termios
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


def run_on_terminal(argv: list[str], env: dict[str, str]) -> None:
    """Run `argv` with stdin, stdout and stderr on a new 120x40 pseudo-terminal; read all it
    prints; fail loudly if it fails."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    printed = b""
    try:
        while chunk := os.read(master, 65536):
            printed += chunk
    except OSError:  # EIO: the terminal's other end closed
        pass
    finally:
        os.close(master)
    if proc.wait() != 0:
        raise SystemExit(f"{argv} failed on a terminal: {printed[-500:]!r}")


def main() -> int:
    env = {**installed_env(), "COLUMNS": "120"}  # bytecode compiled once, as installed
    other_cli = os.environ.get("BENCH_COMPARE_CLI")
    if other_cli:
        for name, argv in list(COMMANDS.items())[1:]:
            COMMANDS[f"{name} ({other_cli})"] = ["env", f"PYTHONPATH={other_cli}", *argv]
    tty_env = {**env, "TERM": "xterm-256color"}
    for argv in COMMANDS.values():  # warm the disk cache; fail loudly if one does not work
        subprocess.run(argv, capture_output=True, check=True, env=env)
        run_on_terminal(argv, tty_env)
    times: dict[str, dict[str, list[float]]] = {"pipe": {}, "terminal": {}}
    for _ in range(RUNS):
        for name, argv in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=True, env=env)
            times["pipe"].setdefault(name, []).append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            run_on_terminal(argv, tty_env)
            times["terminal"].setdefault(name, []).append((time.perf_counter() - start) * 1000)
    for where, runs in times.items():
        print(f"output on a {where}:")
        floor = statistics.median(runs["bare PortAudio query"])
        for name, values in runs.items():
            median = statistics.median(values)
            print(
                f"  {name}: median {median:.0f} ms (min {min(values):.0f}, max "
                f"{max(values):.0f}) over {RUNS} interleaved runs = {median / floor:.2f}x the "
                "bare query"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
