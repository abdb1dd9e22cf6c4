"""Process start -> `session.created`: `rtc-voice talk` against a stock aiortc client, one run.

Both clients connect to the same local server, `rtc-voice serve` on 127.0.0.1 in its own
process, started once. Each run this process takes the wall clock (`time.time()`) just before
it starts the client and again when the client's line saying `session.created` arrives on its
stdout; runs alternate client by client. The clients:

  - stock aiortc: bench/stock_client.py --until-session-created (aiohttp mints the key, then
    aiortc makes the offer, posts it to /calls, and the client prints a line when
    `session.created` arrives on `oai-events`; no microphone or speaker is opened);
  - rtc-voice: `rtc-voice talk --base-url URL --json`, the installed entry point with the
    default microphone and speaker of the (private) PulseAudio daemon, as a user runs it;
    `--json` prints each server event as a line, the first one being `session.created`;
  - rtc-voice (probed): the same through bench/connect_probe.py, which adds the wall-clock
    marks of its phases (key request, offer, POST /calls); reported apart, so the headline
    figure is the unprobed one.

BENCH_COMPARE_CLI=DIR adds "rtc-voice (DIR)": the same `talk`, importing rtc_voice from DIR
(another checkout's source root, e.g. `git archive OLD cli | tar -x -C /tmp/old`, then
/tmp/old/cli), to compare two versions in one run. Last, where rtc-voice's extra time goes:
the import costs of the talk path, one after another as `talk` meets them, in a fresh process
each time (median of BENCH_RUNS), with aiohttp (the stock client's HTTP) for comparison.

BENCH_HTTP_RTT_MS=N puts a relay between every client and the server that holds each piece of
the server's HTTP replies N ms before passing it on: each request (the key, POST /calls) then
takes a round trip like one over the Internet (100-300 ms to OpenAI), which is what the
overlap of minting with loading and offering is for. WebRTC's own packets go direct on
loopback, undelayed, so this models the HTTP round trips only.

Reported: median, min and max over BENCH_RUNS runs (default 9) of process start ->
`session.created`, start of minting -> `session.created`, and the mint request alone, with
each rtc-voice figure as a difference and ratio to stock, and the target (within 50 ms of
stock). Every client runs with its bytecode compiled, as installed (bench/installed.py).
Run it as `make bench` does: `python -m tests.pulse .venv/bin/python bench/bench_connect.py`.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from installed import installed_env

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.relay

from tests.relay import TcpRelay

HERE = Path(__file__).parent
PY = sys.executable
EXE = str(Path(sys.executable).with_name("rtc-voice"))
RUNS = int(os.environ.get("BENCH_RUNS", "9"))
TARGET_MS = 50.0
TIMEOUT_S = 30.0
HTTP_RTT_MS = float(os.environ.get("BENCH_HTTP_RTT_MS", "0"))


@dataclass
class Figures:
    total: list[float] = field(default_factory=list)  # process start -> session.created, ms
    from_mint: list[float] = field(default_factory=list)  # start of minting -> session.created
    mint: list[float] = field(default_factory=list)  # the key request alone
    phases: dict[str, list[float]] = field(default_factory=dict)  # probe marks, ms after start


class Server:
    """`rtc-voice serve --port 0` in its own process."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [EXE, "serve", "--port", "0"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**env, "COLUMNS": "200"},
        )
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if "listening on" in line:
                self.url = line.split("listening on ")[1].strip()
                break
        else:
            raise SystemExit("rtc-voice serve did not start")
        # keep reading its log so a full pipe never blocks it
        import threading

        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float, dict[str, float]]:
    """Start the client; return (start, arrival of its session.created line, its line)."""
    with tempfile.TemporaryFile() as err:
        start = time.time()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env
        )
        assert proc.stdout is not None
        arrived, line = 0.0, {}
        for raw in proc.stdout:
            if b'"session.created"' in raw:
                arrived = time.time()
                line = json.loads(raw)
                break
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # talk hangs up and leaves; stock has left
        proc.stdout.read()
        proc.wait(TIMEOUT_S)
        if not arrived:
            err.seek(0)
            raise SystemExit(
                f"{argv[1]} never reported session.created (exit {proc.returncode}): "
                f"{err.read().decode(errors='replace')[-500:]}"
            )
    return start, arrived, line


def describe(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):6.1f} ms "
        f"(min {min(values):6.1f}, max {max(values):6.1f})"
    )


def compare(ours: list[float], stock: list[float]) -> str:
    a, b = statistics.median(ours), statistics.median(stock)
    return f"{a - b:+.1f} ms, {a / b:.2f}x stock"


def main() -> int:
    home = tempfile.mkdtemp(prefix="bench-connect-")
    env = {
        **installed_env(),  # bytecode compiled once, as pip/pipx install it
        "OPENAI_API_KEY": "sk-bench-0000000000000000",
        "XDG_CONFIG_HOME": home,  # no user config file changes what is measured
        "COLUMNS": "120",
    }
    server = Server(env)
    url, relay = server.url, None
    if HTTP_RTT_MS:  # every reply passes a relay that holds it HTTP_RTT_MS
        parts = urlsplit(url)
        relay = TcpRelay((parts.hostname or "127.0.0.1", parts.port or 80), HTTP_RTT_MS / 1000)
        url = url.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{relay.port}", 1)
    probe_out = Path(home) / "probe.json"
    clients = {
        "stock aiortc": [PY, str(HERE / "stock_client.py"), url, "--until-session-created"],
        "rtc-voice": [EXE, "talk", "--base-url", url, "--json"],
        "rtc-voice (probed)": [
            PY,
            str(HERE / "connect_probe.py"),
            "talk",
            "--base-url",
            url,
            "--json",
        ],
    }
    other_cli = os.environ.get("BENCH_COMPARE_CLI")
    if other_cli:
        clients[f"rtc-voice ({other_cli})"] = [
            "env",
            f"PYTHONPATH={other_cli}",
            EXE,
            "talk",
            "--base-url",
            url,
            "--json",
        ]
    figures = {name: Figures() for name in clients}
    try:
        for argv in clients.values():  # warm the disk cache; fail loudly if one does not work
            run_once(argv, {**env, "BENCH_PROBE_OUT": str(probe_out)})
        for _ in range(RUNS):
            for name, argv in clients.items():
                probe_out.unlink(missing_ok=True)
                start, arrived, line = run_once(argv, {**env, "BENCH_PROBE_OUT": str(probe_out)})
                f = figures[name]
                f.total.append((arrived - start) * 1000)
                marks = dict(line)
                if probe_out.exists():
                    marks.update(json.loads(probe_out.read_text()))
                if "mint_start" in marks:
                    f.from_mint.append((arrived - marks["mint_start"]) * 1000)
                    f.mint.append((marks["mint_end"] - marks["mint_start"]) * 1000)
                marks["session.created arrived"] = arrived
                for mark, value in marks.items():
                    if isinstance(value, float):
                        f.phases.setdefault(mark, []).append((value - start) * 1000)
    finally:
        if relay is not None:
            relay.close()
        server.stop()
    stock = figures["stock aiortc"]
    print(
        f"connect against `rtc-voice serve` in another process, {RUNS} interleaved runs per "
        "client (wall clock; ratios and differences against stock in the same run)"
        + (f"; every HTTP request takes a {HTTP_RTT_MS:g} ms round trip" if relay else "")
    )
    for name, f in figures.items():
        print(f"{name}:")
        print(f"  process start -> session.created: {describe(f.total)}", end="")
        print("" if f is stock else f"  = {compare(f.total, stock.total)}")
        if f.from_mint:
            print(f"  start of minting -> session.created: {describe(f.from_mint)}", end="")
            print("" if f is stock else f"  = {compare(f.from_mint, stock.from_mint)}")
            print(f"  mint request alone: {describe(f.mint)}", end="")
            print("" if f is stock else f"  = {compare(f.mint, stock.mint)}")
        if name == "rtc-voice (probed)":
            ordered = sorted(f.phases.items(), key=lambda item: statistics.median(item[1]))
            print(
                "  phases, ms after process start (median): "
                + ", ".join(f"{mark} {statistics.median(v):.0f}" for mark, v in ordered)
            )
    gap = statistics.median(figures["rtc-voice"].total) - statistics.median(stock.total)
    verdict = "met" if gap <= TARGET_MS else "MISSED"
    print(
        f"target: rtc-voice within {TARGET_MS:.0f} ms of stock, process start -> "
        f"session.created: {verdict} ({gap:+.0f} ms)"
    )
    import_costs(env)
    return 0


STEPS = """
import json, time
marks = [time.perf_counter()]
def step():
    marks.append(time.perf_counter())
import typer; step()
import rtc_voice.app; step()
from rtc_voice.config import load_settings; load_settings(config_flag=None, flags={}); step()
import rtc_voice.call.supervisor, rtc_voice.ui.modes, rtc_voice.tools; step()
import rtc_voice.api; step()
client = rtc_voice.api.RealtimeApi('http://127.0.0.1:9/v1'); step()
tls_client = rtc_voice.api.RealtimeApi('https://api.openai.com/v1'); step()
import sounddevice; step()
import numpy, av; step()
import aiortc; step()
import rtc_voice.audio.io, rtc_voice.rtc.peer; step()
import livekit.rtc; step()
import aiohttp; step()
print(json.dumps([(b - a) * 1000 for a, b in zip(marks, marks[1:])]))
"""
STEP_NAMES = (
    "typer",
    "rtc_voice.app (CLI, rich console, config module)",
    "settings loaded",
    "rtc-voice's own modules (call, conversation, protocol, screen, tools)",
    "httpx, as rtc_voice.api loads it (the key request can go after this)",
    "the HTTP client, as talk makes it for this bench's http:// server (no CA bundle)",
    "  (not on this bench's path: a second client, for an https:// base URL: the CA bundle)",
    "sounddevice (PortAudio started)",
    "numpy, av (after this, alongside the key request)",
    "aiortc",
    "rtc-voice's media modules",
    "livekit.rtc (echo cancellation)",
    "aiohttp (the stock client's HTTP, for comparison)",
)


def import_costs(env: dict[str, str]) -> None:
    runs = []
    for _ in range(max(RUNS, 3)):
        out = subprocess.run(
            [PY, "-c", STEPS], env=env, capture_output=True, text=True, check=True
        ).stdout
        runs.append(json.loads(out))
    print(
        f"import costs on the talk path, in order, each in a fresh process (median of {len(runs)}):"
    )
    for i, name in enumerate(STEP_NAMES):
        print(f"  {statistics.median(r[i] for r in runs):6.1f} ms  {name}")


if __name__ == "__main__":
    sys.exit(main())
