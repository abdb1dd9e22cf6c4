"""`rtc-voice` as a user runs it, plus wall-clock marks of its connect phases (bench only).

`python bench/connect_probe.py talk …` runs the real CLI. It adds no import the talk path does
not make anyway (the call supervisor is imported by every `talk` before its event loop starts)
and wraps, on the supervisor, only what it needs to see: when `_prepare` (imports, files,
device names, HTTP client: what must fail before anything is sent) starts and ends, when the
key request starts and ends (wrapped on the instance's RealtimeApi once `_prepare` made it, so
httpx is still imported where `talk` imports it), when the offer (peer, offer, ICE gathering)
starts and ends, when POST /calls starts, when the device streams are
opened (on their worker thread), when media starts (the call and the devices both ready) and
when echo cancellation starts being set up and is on (after media starts).
Marks are `time.time()`; at exit they go, as JSON, to the file named by BENCH_PROBE_OUT.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from typing import Any

from rtc_voice.app import main
from rtc_voice.call import supervisor

marks: dict[str, float] = {"probe_loaded": time.time()}


def _first(name: str) -> None:
    marks.setdefault(name, time.time())


_prepare = supervisor.CallSupervisor._prepare
_make_offer = supervisor.CallSupervisor._make_offer
_open_call = supervisor.CallSupervisor._open_call
_open_streams = supervisor.CallSupervisor._open_streams
_start_media = supervisor.CallSupervisor._start_media_when_ready
_start_echo = supervisor.CallSupervisor._start_echo


async def _probed_prepare(self: Any) -> None:
    _first("prepare_start")
    await _prepare(self)
    _first("prepare_end")
    api = self._api
    create = api.create_client_secret

    async def create_client_secret(*args: Any, **kwargs: Any) -> Any:
        _first("mint_start")
        try:
            return await create(*args, **kwargs)
        finally:
            _first("mint_end")

    api.create_client_secret = create_client_secret


async def _probed_offer(self: Any, result: Any) -> None:
    _first("offer_start")
    await _make_offer(self, result)
    _first("offer_end")


async def _probed_open_call(self: Any) -> None:
    _first("open_call_start")
    await _open_call(self)
    _first("open_call_end")


def _probed_open_streams(self: Any, loop: Any) -> Any:
    _first("devices_open_start")  # a worker thread: setdefault on a dict is atomic
    try:
        return _open_streams(self, loop)
    finally:
        _first("devices_open_end")


async def _probed_start_media(self: Any) -> None:
    await _start_media(self)
    _first("media_started")


async def _probed_start_echo(self: Any) -> None:
    _first("echo_start")
    await _start_echo(self)
    _first("echo_on")


def _dump() -> None:
    path = os.environ.get("BENCH_PROBE_OUT")
    if path:
        with open(path, "w") as f:
            json.dump(marks, f)


supervisor.CallSupervisor._prepare = _probed_prepare  # type: ignore[method-assign]
supervisor.CallSupervisor._make_offer = _probed_offer  # type: ignore[method-assign]
supervisor.CallSupervisor._open_call = _probed_open_call  # type: ignore[method-assign]
supervisor.CallSupervisor._open_streams = _probed_open_streams  # type: ignore[method-assign]
supervisor.CallSupervisor._start_media_when_ready = _probed_start_media  # type: ignore[method-assign]
supervisor.CallSupervisor._start_echo = _probed_start_echo  # type: ignore[method-assign]
atexit.register(_dump)

if __name__ == "__main__":
    sys.argv[0] = "rtc-voice"
    sys.exit(main())
