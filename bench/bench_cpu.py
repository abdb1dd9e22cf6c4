"""Client CPU in a full-duplex call, steady state, every client interleaved in one run:

  - rtc-voice with the live screen (a real terminal: tmux, 110x32), the way a person runs it;
  - rtc-voice plain (`talk` with its output in a pipe: the line presenter);
  - rtc-voice with the live screen and --no-aec (no echo canceller: the stock client has none);
  - the stock aiortc client (bench/stock_client.py): aiortc's generated silence up, no
    microphone, a plain sounddevice OutputStream for the speaker;
  - the stock aiortc client with a microphone (`stock_client.py --mic`): the default
    microphone through a plain sounddevice InputStream into an aiortc track, the way Semantic
    Kernel's aiortc sample sends it (still no echo canceller);
  - rtc-voice's microphone + speaker streams alone, no call (bench/bench_devices_stream.py);
  - bare PortAudio streams with empty callbacks (the floor under the line above);
  - bare PortAudio streams as the stock client with a mic opens them (default latency, blocking
    speaker writes): the same floor for the stock clients.

Turns: the clicks above play throughout the window, so the speaker is never silent for long.
A person's call has turns: the assistant speaks, then listens. The rows marked "turns" use the
click server's turns (5 s of clicks, then 5 s of silence; `turns_s`), where rtc-voice rests
its echo canceller in the silences. BENCH_CLIENTS="name;name" measures only those rows (the
names in NAMES below).

With BENCH_BEFORE=DIR (another checkout of rtc-voice, e.g. `git worktree add /tmp/before main`
or `git archive main | tar -x -C /tmp/before`), the live screen and the streams alone are also
measured with DIR's code (PYTHONPATH=DIR/cli, DIR/bench/bench_devices_stream.py), interleaved
in the same rounds: before and after side by side.

Each call goes to the click server (bench/click_server.py, its own process: a continuous 20 ms
audio stream down) with the default microphone up and the default speaker playing. CPU = user +
system time of the client process (from /proc) over the measured window, which starts 4 s
after launch (connect and stream start left out) and lasts BENCH_SECONDS (default 60). ROUNDS
(env BENCH_ROUNDS, default 2) alternate the clients; figures are medians over the rounds, each
also as a ratio to the stock client's median in the same run.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).parent
PY = sys.executable
SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
SETTLE_S = 4.0
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([PY, str(HERE / "click_server.py")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        raise SystemExit(f"click server did not start: {line!r}")
    return proc, line.split("listening on ")[1].strip()


BEFORE = os.environ.get("BENCH_BEFORE")
TURNS_S = 5.0


def configure(url: str, **values: float) -> None:
    request = urllib.request.Request(
        url.removesuffix("/v1") + "/bench/config",
        data=json.dumps(values).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).read()


def measure(client: str, url: str, tmp: Path) -> float:
    """CPU share (% of one core) of one client over the steady window."""
    turns = client.endswith(", turns")
    configure(url, turns_s=TURNS_S if turns else 0.0)
    client = client.removesuffix(", turns")
    pidfile = tmp / f"{uuid.uuid4().hex}.pid"
    duration = str(SECONDS + SETTLE_S + 3)
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench-0000000000000000"}
    here = HERE
    if client.endswith(", before"):
        assert BEFORE is not None
        client = client.removesuffix(", before")
        env["PYTHONPATH"] = str(Path(BEFORE) / "cli")
        here = Path(BEFORE) / "bench"
    if client == "stock":
        argv = [PY, str(HERE / "stock_client.py"), url, duration]
    elif client == "stock + mic":
        argv = [PY, str(HERE / "stock_client.py"), "--mic", url, duration]
    elif client == "devices":
        argv = [PY, str(here / "bench_devices_stream.py"), duration]
    elif client == "bare":
        argv = [PY, str(HERE / "bench_devices_stream.py"), "--bare", duration]
    elif client == "bare, stock":
        argv = [PY, str(HERE / "bench_devices_stream.py"), "--bare-stock", duration]
    else:
        argv = [PY, "-m", "rtc_voice", "talk", "--base-url", url, "--max-duration", duration]
        if client == "live, no aec":
            argv.append("--no-aec")
    tmux_socket = None
    if client in ("live screen", "live, no aec"):
        tmux_socket = str(pidfile.with_suffix(".tmux"))  # in tmp: tmux leaves its socket file
        command = f"echo $$ > {shlex.quote(str(pidfile))}; exec {shlex.join(argv)}"
        exports = " ".join(
            f"{k}={shlex.quote(v)}"
            for k, v in env.items()
            if k.startswith(("PULSE_", "OPENAI_", "XDG_", "PATH", "HOME", "PYTHONPATH"))
        )
        subprocess.run(
            [
                *("tmux", "-S", tmux_socket, "new-session", "-d", "-x", "110", "-y", "32"),
                f"env {exports} sh -c {shlex.quote(command)}",
            ],
            check=True,
        )
        deadline = time.monotonic() + 10
        while not pidfile.exists() or not pidfile.read_text().strip():
            if time.monotonic() > deadline:
                raise SystemExit("the live-screen talk did not start under tmux")
            time.sleep(0.05)
        pid = int(pidfile.read_text())
        proc = None
    else:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        pid = proc.pid
    try:
        time.sleep(SETTLE_S)
        cpu0, wall0 = cpu_seconds(pid), time.monotonic()
        time.sleep(SECONDS)
        cpu1, wall1 = cpu_seconds(pid), time.monotonic()
    finally:
        if proc is not None:
            proc.terminate()
            proc.communicate(timeout=30)
        if tmux_socket is not None:
            subprocess.run(["tmux", "-S", tmux_socket, "kill-server"], capture_output=True)
    return (cpu1 - cpu0) / (wall1 - wall0) * 100


NAMES = {
    "live screen": "rtc-voice, live screen",
    "plain": "rtc-voice, plain output",
    "live, no aec": "rtc-voice, live, --no-aec",
    "stock": "stock aiortc client",
    "stock + mic": "stock aiortc client + mic",
    "devices": "rtc-voice mic+speaker alone",
    "bare": "bare PortAudio streams",
    "bare, stock": "bare streams, stock style",
    "live screen, before": "BEFORE: live screen",
    "live screen, turns": "rtc-voice, live screen, turns",
    "live, no aec, turns": "rtc-voice, live, --no-aec, turns",
    "stock + mic, turns": "stock aiortc client + mic, turns",
    "devices, before": "BEFORE: mic+speaker alone",
}


def main() -> int:
    live = ["live screen", "live, no aec"] if shutil.which("tmux") else []
    before = BEFORE is not None
    clients = [
        *live[:1],
        *(["live screen, before"] if before and live else []),
        "plain",
        *live[1:],
        "stock",
        "stock + mic",
        "devices",
        *(["devices, before"] if before else []),
        "bare",
        "bare, stock",
        *[f"{c}, turns" for c in live],
        "stock + mic, turns",
    ]
    only = os.environ.get("BENCH_CLIENTS")
    if only:  # the two stock clients stay: every ratio is to them
        wanted = {*only.split(";"), "stock", "stock + mic"}
        clients = [c for c in clients if c in wanted]
    server, url = start_server()
    shares: dict[str, list[float]] = {c: [] for c in clients}
    try:
        with tempfile.TemporaryDirectory() as tmpdir:
            for _ in range(ROUNDS):
                for client in clients:
                    shares[client].append(measure(client, url, Path(tmpdir)))
    finally:
        server.terminate()
        server.wait(10)
    stock = statistics.median(shares["stock"])
    stock_mic = statistics.median(shares["stock + mic"])
    print(
        f"client CPU, full duplex, {SECONDS:g} s steady window x {ROUNDS} rounds "
        f"(load {os.getloadavg()[0]:.1f} at the end):"
    )
    for client, values in shares.items():
        median = statistics.median(values)
        print(
            f"  {NAMES[client]:29} {median:5.1f}% of one core "
            f"(runs: {', '.join(f'{v:.1f}' for v in values)}) = {median / stock:.2f}x stock, "
            f"{median / stock_mic:.2f}x stock + mic"
        )
    if before:
        print(f"  (BEFORE = {BEFORE})")
    if not live:
        print("  (tmux is not installed: the live screen was not measured)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
