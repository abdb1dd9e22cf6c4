"""`rtc-voice` exactly as a user runs it, plus a listener in the speaker callback (bench only).

`python bench/talk_probe.py talk …` runs the real CLI. Before that it wraps OutputSink's PortAudio
callback: after the sink has filled a block, any click in it is logged with the time the block
was handed to PortAudio and PortAudio's own estimate of when its first sample reaches the DAC.
At exit the log and the sink's counters go to the JSON file named by BENCH_PROBE_OUT.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from typing import Any

import numpy as np

from rtc_voice.app import main
from rtc_voice.audio import devices

THRESHOLD = 4000  # a click peaks near 20000; silence and codec noise stay far below
REFRACTORY_S = 0.2

log: dict[str, Any] = {"callback": [], "dac": [], "sinks": []}
_last = [0.0]
_original_callback = devices.OutputSink._callback
_original_close = devices.OutputSink.close


def _callback(self: Any, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
    _original_callback(self, outdata, frames, time_info, status)
    now = time.monotonic()
    loud = np.flatnonzero(np.abs(outdata[:, 0].astype(np.int32)) > THRESHOLD)
    if len(loud) and now - _last[0] > REFRACTORY_S:
        _last[0] = now
        offset = loud[0] / self.rate
        ahead = max(0.0, time_info.outputBufferDacTime - time_info.currentTime)
        log["callback"].append(now + offset)
        log["dac"].append(now + ahead + offset)


def _close(self: Any) -> None:
    controller = getattr(self, "playout", None)
    log["sinks"].append(
        {
            "underruns": self.underruns,
            "played_ms": self.played_ms,
            "trimmed_ms": self.trimmed_samples * 1000 / self.rate,
            "shed_ms": controller.shed * 1000 / self.rate if controller else None,
        }
    )
    _original_close(self)


def _dump() -> None:
    path = os.environ.get("BENCH_PROBE_OUT")
    if path:
        with open(path, "w") as f:
            json.dump(log, f)


devices.OutputSink._callback = _callback  # type: ignore[method-assign]
devices.OutputSink.close = _close  # type: ignore[method-assign]
atexit.register(_dump)

if __name__ == "__main__":
    sys.argv[0] = "rtc-voice"
    sys.exit(main())
