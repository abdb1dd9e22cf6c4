"""A quick smoke test of an installed rtc-voice: `python .ci/smoke.py PATH/TO/rtc-voice`.

`make lowest` runs it against the lowest versions pyproject.toml allows (uv's
`--resolution lowest-direct`), so a lower bound that no longer works fails CI. Every path here
needs no audio device and no network beyond 127.0.0.1: help, version, config, the local server
minting a key for `token`, and a whole `talk --local` call from a file, recorded as FLAC.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "cli" / "rtc_voice" / "data" / "hello.wav"


def main() -> int:
    exe = sys.argv[1]
    work = Path(tempfile.mkdtemp(prefix="rtc-voice-smoke-"))
    env = {**os.environ, "XDG_CONFIG_HOME": str(work)}
    env.pop("OPENAI_API_KEY", None)
    failures: list[str] = []

    def run(*args: str, expect: str = "", **extra: str) -> str:
        done = subprocess.run(
            [exe, *args],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=90,
            stdin=subprocess.DEVNULL,
        )
        ok = done.returncode == 0 and expect in done.stdout + done.stderr
        print(f"{'ok  ' if ok else 'FAIL'} rtc-voice {' '.join(args)}", flush=True)
        if not ok:
            failures.append(" ".join(args))
            print(done.stdout + done.stderr)
        return done.stdout

    run("--help", expect="talk")
    run("--version", expect="rtc-voice ")
    run("config", "show", "--json", expect='"model"')
    server = subprocess.Popen(
        [exe, "serve", "--port", "0"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stderr is not None
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            match = re.search(r"listening on (http://\S+/v1)", server.stderr.readline())
            url = match.group(1) if match else None
        if url is None:
            failures.append("serve")
        else:
            run("token", "--base-url", url, expect="ek_", OPENAI_API_KEY="sk-smoke-0123456789ab")
    finally:
        server.terminate()
        server.wait(20)
    record = work / "call.flac"
    run(
        "talk",
        "--local",
        "--input",
        str(HELLO),
        "--output",
        "none",
        "--record",
        str(record),
        "--max-duration",
        "30",
        expect="assistant: I heard about",
    )
    if not record.exists() or record.stat().st_size < 10_000:
        failures.append("talk --record call.flac wrote no recording")
    if failures:
        print(f"smoke: {len(failures)} failed: {failures}", file=sys.stderr)
        return 1
    print("smoke: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
