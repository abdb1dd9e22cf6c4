"""Running the user's declared tools: a command (no shell, a minimal environment, the arguments
as JSON on stdin) or an HTTP POST (aiohttp), with the output capped.

Both return the tool's output as text or raise `ToolFailed` with a sentence the model can read.
Timeouts and cancellation come from outside (`ToolRegistry.run`, the user's interrupt); a command
is killed, with its whole process group, whenever its run is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Mapping
from typing import Any

from rtc_voice.config import SECRET_ENV  # never handed to a command
from rtc_voice.tools import Tool, ToolFailed
from rtc_voice.tools.spec import ToolSpec

OUTPUT_CAP = 16 * 1024  # bytes of output the model gets
READ_LIMIT = 4 * 1024 * 1024  # bytes of an HTTP body read (and counted) before it is left
STDERR_TAIL = 600  # characters of stderr quoted in an error


def capped(data: bytes, total: int, cap: int = OUTPUT_CAP, *, complete: bool = True) -> str:
    """The output as text (without the trailing newline of a last printed line): whole when it
    fits, else the first `cap` bytes and a note saying how much there was (`complete`: `total`
    counts all of it, else reading stopped there)."""
    if total <= cap:
        return data.decode("utf-8", errors="replace").rstrip("\r\n")
    head = data[:cap].decode("utf-8", errors="ignore")
    more = f"{total} bytes" if complete else f"more than {total} bytes"
    return f"{head}\n[output cut: the tool returned {more}; only the first {cap} are shown]"


async def _read_capped(stream: asyncio.StreamReader, keep: int) -> tuple[bytes, int]:
    """Read to the end (so the writer never blocks on a full pipe), keeping `keep` bytes."""
    kept = bytearray()
    total = 0
    while chunk := await stream.read(65536):
        total += len(chunk)
        if len(kept) < keep:
            kept += chunk[: keep - len(kept)]
    return bytes(kept), total


def command_env(allow: tuple[str, ...], secrets: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment a command gets: only the allow-listed variables that are set, never the
    API key (by name or by value)."""
    return {
        name: value
        for name in allow
        if (value := os.environ.get(name)) is not None
        and name not in SECRET_ENV
        and value not in secrets
    }


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: children go too


async def run_command(
    name: str, argv: tuple[str, ...], arguments: Mapping[str, Any], env: Mapping[str, str]
) -> str:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
            start_new_session=True,
        )
    except FileNotFoundError:
        raise ToolFailed(f"the tool {name} could not start: {argv[0]} does not exist") from None
    except PermissionError:
        raise ToolFailed(f"the tool {name} could not start: {argv[0]} is not executable") from None
    except OSError as exc:
        raise ToolFailed(f"the tool {name} could not start: {exc.strerror or exc}") from None
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(json.dumps(arguments).encode())
            await proc.stdin.drain()
            proc.stdin.close()
        (out, total), (err, _) = await asyncio.gather(
            _read_capped(proc.stdout, OUTPUT_CAP), _read_capped(proc.stderr, 64 * 1024)
        )
        code = await proc.wait()
    except BaseException:  # timeout, interrupt, teardown: leave no process behind
        _kill(proc)
        with contextlib.suppress(Exception):
            await asyncio.shield(proc.wait())
        raise
    if code != 0:
        tail = err.decode("utf-8", errors="replace").strip()[-STDERR_TAIL:]
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        raise ToolFailed(f"the tool {name} {how}" + (f": {tail}" if tail else ""))
    return capped(out, total)


async def run_http(name: str, url: str, arguments: Mapping[str, Any]) -> str:
    import aiohttp

    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json=dict(arguments)) as response,
        ):
            kept = bytearray()
            total = 0
            complete = True
            async for chunk in response.content.iter_chunked(65536):
                total += len(chunk)
                if len(kept) < OUTPUT_CAP:
                    kept += chunk[: OUTPUT_CAP - len(kept)]
                if total >= READ_LIMIT:  # enough to say it was cut; leave the rest unread
                    complete = False
                    break
            if response.status >= 400:
                body = bytes(kept).decode("utf-8", errors="replace").strip()[:STDERR_TAIL]
                raise ToolFailed(
                    f"the tool {name} got HTTP {response.status} {response.reason or ''}".rstrip()
                    + (f": {body}" if body else "")
                )
    except aiohttp.ClientError as exc:
        raise ToolFailed(
            f"the tool {name} could not reach {url}: {exc or type(exc).__name__}"
        ) from None
    return capped(bytes(kept), total, complete=complete)


def declared_tool(spec: ToolSpec, env: Mapping[str, str]) -> Tool:
    """A registry `Tool` that runs a `[tools.NAME]` declaration."""

    async def run(arguments: Mapping[str, Any]) -> str:
        if spec.command is not None:
            return await run_command(spec.name, spec.command, arguments, env)
        assert spec.http is not None
        return await run_http(spec.name, spec.http, arguments)

    return Tool(
        name=spec.name,
        description=spec.description,
        run=run,
        parameters=spec.parameters,
        timeout=spec.timeout,
        approval=spec.approval,
    )
