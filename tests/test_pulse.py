"""The private PulseAudio daemon the tests and benchmarks run on ends with the process that
started it, even when that process is killed, so interrupted runs leave nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pulse import PrivatePulse

pytestmark = pytest.mark.timeout(60)

STARTER = """
import sys, time
from tests.pulse import PrivatePulse
pulse = PrivatePulse.start()
print(pulse.directory, flush=True)
time.sleep(600)
"""


def test_daemon_ends_when_its_starter_is_killed(pulse: PrivatePulse) -> None:
    root = Path(__file__).resolve().parent.parent
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER], cwd=root, stdout=subprocess.PIPE, text=True
    )
    assert starter.stdout is not None
    orphan = PrivatePulse(Path(starter.stdout.readline().strip()))
    try:
        assert orphan.alive(), "the starter's daemon did not come up"
        os.kill(starter.pid, signal.SIGKILL)  # no clean-up code runs
        starter.wait(timeout=10)
        deadline = time.monotonic() + 10
        while orphan.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not orphan.alive(), "the daemon outlived the process that started it"
    finally:
        if orphan.alive():
            orphan.pactl("exit")
        starter.kill()
        starter.wait(timeout=10)
        starter.stdout.close()
