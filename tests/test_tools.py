"""tools/: a registry of tools run as tasks with timeouts; sinks: writes off the event loop."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rtc_voice.sinks import WriterThread
from rtc_voice.tools import Tool, ToolRegistry, default_registry
from rtc_voice.tools.builtin import get_time


def output(text: str) -> dict[str, Any]:
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


async def test_get_time_is_the_only_built_in_and_answers_the_time() -> None:
    assert default_registry().names() == ["get_time"]
    fixed = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    registry = ToolRegistry([get_time(lambda: fixed)])
    assert output(await registry.run("get_time", "{}")) == {
        "local_time": "2026-01-02T03:04:05+00:00",
        "timezone": "UTC",
    }


async def test_failures_become_outputs_the_model_can_read() -> None:
    async def broken(arguments: Mapping[str, Any]) -> str:
        raise LookupError("no such city")

    async def slow(arguments: Mapping[str, Any]) -> str:
        await asyncio.sleep(30)
        return "late"

    registry = ToolRegistry(
        [Tool("broken", "fails", broken), Tool("slow", "hangs", slow, timeout=0.1)]
    )
    assert output(await registry.run("nope", "{}")) == {"error": "unknown tool 'nope'"}
    assert "invalid arguments" in output(await registry.run("broken", "[1]"))["error"]
    assert "invalid arguments" in output(await registry.run("broken", "{oops"))["error"]
    assert output(await registry.run("broken", "{}")) == {
        "error": "the tool broken failed: LookupError: no such city"
    }
    started = time.monotonic()
    assert output(await registry.run("slow", "{}")) == {
        "error": "the tool slow did not finish within 0.1 s"
    }
    assert time.monotonic() - started < 5
    with pytest.raises(ValueError, match="already registered"):
        registry.add(Tool("slow", "again", slow))


async def test_tools_run_concurrently_and_receive_their_arguments() -> None:
    seen: list[Mapping[str, Any]] = []
    both_running = asyncio.Barrier(2)

    async def echo(arguments: Mapping[str, Any]) -> str:
        seen.append(arguments)
        await both_running.wait()  # would deadlock (and time out) if run one after another
        return json.dumps(arguments)

    registry = ToolRegistry([Tool("echo", "echoes", echo, timeout=5)])
    results = await asyncio.gather(
        registry.run("echo", '{"n": 1}'), registry.run("echo", '{"n": 2}')
    )
    assert [output(r) for r in results] == [{"n": 1}, {"n": 2}]
    assert registry.definitions()[0] == {
        "type": "function",
        "name": "echo",
        "description": "echoes",
        "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
    }


def test_the_writer_thread_writes_in_order_off_the_calling_thread(tmp_path: Path) -> None:
    threads: set[str] = set()
    path = tmp_path / "out.txt"
    handle = path.open("w")

    def write(text: str) -> None:
        threads.add(threading.current_thread().name)
        handle.write(text)

    writer = WriterThread()
    for i in range(100):
        writer.submit(write, f"{i},")
    writer.submit(handle.close, cleanup=True)
    writer.close()
    assert path.read_text() == "".join(f"{i}," for i in range(100))
    assert threads == {"rtc-voice-writer"} and not writer.alive


def test_the_first_write_error_is_reported_once_and_later_writes_are_dropped() -> None:
    errors: list[BaseException] = []
    done: list[int] = []

    def fail() -> None:
        raise OSError(28, "No space left on device")

    writer = WriterThread(on_error=errors.append)
    writer.submit(done.append, 1)
    writer.submit(fail)
    writer.submit(fail)
    writer.submit(done.append, 2)
    writer.submit(done.append, 3, cleanup=True)
    writer.close()
    assert done == [1, 3]
    assert len(errors) == 1 and isinstance(errors[0], OSError)
