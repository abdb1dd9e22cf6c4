"""The user's own tools: declared in the config file, run as commands or HTTP POSTs with a cap,
a timeout and approval, called by the model against the local server."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from rtc_voice.audio.pcm import silence
from rtc_voice.audio.wavfile import WavWriter
from rtc_voice.call.supervisor import CallSupervisor, TalkOptions
from rtc_voice.config import Settings, load_settings
from rtc_voice.credentials import ApiKey
from rtc_voice.errors import ConfigError, ExitCode, UsageError
from rtc_voice.tools import ToolRegistry, build_registry
from rtc_voice.tools.approval import Approvals
from rtc_voice.tools.calls import ToolCalls
from rtc_voice.tools.runners import OUTPUT_CAP, command_env, run_command
from rtc_voice.tools.spec import ToolSpec
from rtc_voice.ui.plain import LinePresenter
from tests.rtc_client import validate_client_event, validate_server_event
from tests.support import rtc_voice

PY = sys.executable


def script(tmp_path: Path, name: str, body: str) -> list[str]:
    """A command tool: a Python script run with this interpreter (argv, no shell)."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return [PY, str(path)]


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent(text))
    return path


def out(text: str) -> dict[str, Any]:
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


# --- the config file ---------------------------------------------------------------------------


def test_declared_tools_are_read_and_listed_by_config_show(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        """\
        [tools]
        get_time = false
        env = ["PATH", "LANG"]

        [tools.weather]
        description = "Current weather for a city"
        command = ["./bin/weather", "--json"]
        timeout = 4
        approval = "never"

        [tools.weather.parameters]
        type = "object"
        required = ["city"]
        properties = { city = { type = "string" } }

        [tools.tickets]
        description = "Open support tickets"
        http = "http://127.0.0.1:9000/tickets"
        """,
    )
    settings = load_settings(config_flag=config, env={})
    weather, tickets = settings.tools["weather"], settings.tools["tickets"]
    assert weather.command == (str(tmp_path / "bin" / "weather"), "--json")  # beside the file
    assert weather.parameters["required"] == ["city"]
    assert (weather.timeout, weather.approval, weather.where) == (4.0, "never", f"{config}:5")
    assert (tickets.http, tickets.approval, tickets.timeout) == (
        "http://127.0.0.1:9000/tickets",
        "ask",
        10.0,
    )
    assert settings.get_time is False and settings.tool_env == ("PATH", "LANG")
    shown = subprocess.run(
        rtc_voice("config", "show", "--json", "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)},
    )
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert rows["tools.tickets"] == {
        "value": {
            "description": "Open support tickets",
            "http": "http://127.0.0.1:9000/tickets",
            "parameters": {"type": "object", "properties": {}},
            "timeout": 10.0,
            "approval": "ask",
        },
        "source": "file",
        "origin": f"{config}:16",
    }
    assert rows["tools.get_time"]["value"] is False
    table = subprocess.run(
        rtc_voice("config", "show", "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "COLUMNS": "200"},
    )
    assert "POST http://127.0.0.1:9000/tickets (approval ask, timeout 10 s)" in table.stdout


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            'description = "d"\ncommand = ["x"]\ntimout = 3\n',
            5,
            "Unknown key 'timout' in [tools.t]",
        ),
        ('description = "d"\n', 2, "needs command = "),
        (
            'description = "d"\ncommand = ["x"]\nhttp = "http://127.0.0.1:1/"\n',
            5,
            "has both command and http",
        ),
        (
            'description = "d"\ncommand = ["x"]\nparameters = { type = "object", '
            'properties = { a = { type = "strung" } } }\n',
            5,
            "is not a valid JSON schema",
        ),
        ('description = "d"\ncommand = "x --json"\n', 4, "not one string"),
        ('description = "d"\ncommand = ["x"]\napproval = "maybe"\n', 5, 'must be "ask"'),
        ('command = ["x"]\n', 2, "needs a description"),
    ],
)
def test_mistakes_name_file_and_line_and_exit_3(
    tmp_path: Path, body: str, line: int, message: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('model = "gpt-realtime"\n[tools.t]\n' + body)
    with pytest.raises(ConfigError) as caught:
        load_settings(config_flag=config, env={})
    assert caught.value.message.startswith(f"{config}:{line}: ")
    assert message in caught.value.message
    assert caught.value.exit_code == ExitCode.CONFIG == 3


def test_the_api_key_cannot_be_allow_listed(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[tools]\nenv = ["PATH", "OPENAI_API_KEY"]\n')
    with pytest.raises(ConfigError, match="never get the API key"):
        load_settings(config_flag=config, env={})


def test_tool_and_no_tools_choose_per_call(tmp_path: Path) -> None:
    spec = ToolSpec("echo", "echoes", command=(PY, "-c", "pass"), approval="never")
    settings = replace(Settings(), tools={"echo": spec})
    assert build_registry(settings).names() == ["get_time", "echo"]
    assert build_registry(settings, ["echo"]).names() == ["echo"]
    assert build_registry(settings, no_tools=True).names() == []
    assert build_registry(replace(settings, get_time=False)).names() == ["echo"]
    with pytest.raises(UsageError, match="No tool named 'eco'") as caught:
        build_registry(settings, ["eco"])
    assert caught.value.hint == "Did you mean 'echo'?"
    missing = replace(spec, command=("/nonexistent/tool",), where="c.toml:3")
    with pytest.raises(ConfigError, match=r"^c\.toml:3: the command of tool 'echo'"):
        build_registry(replace(settings, tools={"echo": missing}))


# --- running -----------------------------------------------------------------------------------


async def test_command_gets_json_on_stdin_a_minimal_env_and_never_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-by-name")
    monkeypatch.setenv("ALLOWED", "yes")
    monkeypatch.setenv("CARRIES_KEY", "sk-secret-by-value")
    monkeypatch.setenv("NOT_LISTED", "no")
    argv = script(
        tmp_path,
        "show",
        """\
        import json, os, sys
        print(json.dumps({"args": json.load(sys.stdin), "env": sorted(os.environ)}))
        """,
    )
    env = command_env(
        ("PATH", "ALLOWED", "CARRIES_KEY", "OPENAI_API_KEY"), secrets=("sk-secret-by-value",)
    )
    result = out(await run_command("show", tuple(argv), {"city": "Paris"}, env))
    assert result["args"] == {"city": "Paris"}
    assert "ALLOWED" in result["env"]
    for name in ("OPENAI_API_KEY", "CARRIES_KEY", "NOT_LISTED"):
        assert name not in result["env"]


async def test_failures_and_big_outputs_reach_the_model_as_text(tmp_path: Path) -> None:
    def tool(name: str, body: str, timeout: float = 5) -> ToolSpec:
        return ToolSpec(name, name, command=tuple(script(tmp_path, name, body)), timeout=timeout)

    pid_file = tmp_path / "hang.pid"
    specs = [
        tool("fails", "import sys; sys.stderr.write('city not found'); sys.exit(2)"),
        tool("big", "import sys; sys.stdout.write('x' * 40960)"),
        tool(
            "hang",
            f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
            "time.sleep(60)",
            timeout=1,
        ),
    ]
    settings = replace(Settings(), tools={s.name: s for s in specs}, get_time=False)
    registry = build_registry(settings)
    assert out(await registry.run("fails", "{}")) == {
        "error": "the tool fails exited with status 2: city not found"
    }
    assert "invalid arguments" in out(await registry.run("fails", '{"a": '))["error"]
    big = await registry.run("big", "{}")
    assert big.startswith("x" * OUTPUT_CAP + "\n[output cut: the tool returned 40960 bytes")
    assert len(big.encode()) < OUTPUT_CAP + 200
    started = time.monotonic()
    assert out(await registry.run("hang", "{}")) == {
        "error": "the tool hang did not finish within 1 s"
    }
    assert time.monotonic() - started < 10
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # killed at its timeout, not left running
        os.kill(pid, 0)


@pytest.fixture
async def http_tool_server() -> AsyncIterator[tuple[str, list[Any]]]:
    """A real aiohttp server on 127.0.0.1: /echo answers the arguments, /broken a 503."""
    seen: list[Any] = []

    async def echo(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body)
        return web.json_response({"open_tickets": 2, "customer": body.get("customer")})

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503, text="maintenance until noon")

    async def big(request: web.Request) -> web.Response:
        return web.Response(text="y" * 40960)

    app = web.Application()
    app.router.add_post("/big", big)
    app.router.add_post("/echo", echo)
    app.router.add_post("/broken", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_http_tool_posts_json_and_errors_are_clear(
    http_tool_server: tuple[str, list[Any]],
) -> None:
    base, seen = http_tool_server
    settings = replace(
        Settings(),
        get_time=False,
        tools={
            "tickets": ToolSpec("tickets", "t", http=f"{base}/echo", approval="never"),
            "broken": ToolSpec("broken", "b", http=f"{base}/broken", approval="never"),
            "gone": ToolSpec("gone", "g", http="http://127.0.0.1:9/", approval="never"),
            "big": ToolSpec("big", "b", http=f"{base}/big", approval="never"),
        },
    )
    registry = build_registry(settings)
    assert out(await registry.run("tickets", '{"customer": "ACME"}')) == {
        "open_tickets": 2,
        "customer": "ACME",
    }
    assert seen == [{"customer": "ACME"}]
    assert out(await registry.run("broken", "{}")) == {
        "error": "the tool broken got HTTP 503 Service Unavailable: maintenance until noon"
    }
    assert "could not reach http://127.0.0.1:9/" in out(await registry.run("gone", "{}"))["error"]
    big = await registry.run("big", "{}")
    assert big == "y" * OUTPUT_CAP + (
        f"\n[output cut: the tool returned 40960 bytes; only the first {OUTPUT_CAP} are shown]"
    )


async def test_approval_yes_no_timeout_policies_and_interrupt() -> None:
    ran: list[str] = []

    async def work(arguments: Mapping[str, Any]) -> str:
        ran.append(json.dumps(arguments))
        await asyncio.sleep(float(arguments.get("sleep", 0)))
        return "done"

    from rtc_voice.tools import Tool

    registry = ToolRegistry([Tool("work", "w", work, timeout=30, approval="ask")])
    approvals = Approvals("ask", timeout=0.3)
    calls = ToolCalls(registry, approvals)
    asked = asyncio.create_task(calls.run("c1", "work", '{"n": 1}'))
    await asyncio.sleep(0.05)
    pending = approvals.pending()
    assert pending is not None and (pending.id, pending.name, pending.arguments) == (
        "c1",
        "work",
        '{"n": 1}',
    )
    assert approvals.answer("c1", True)
    record = await asyncio.wait_for(asked, 5)
    assert (record.output, record.approved_by, record.ran) == ("done", "you", True)

    declined = asyncio.create_task(calls.run("c2", "work", "{}"))
    await asyncio.sleep(0.05)
    approvals.answer("c2", False)
    record = await asyncio.wait_for(declined, 5)
    assert not record.ran and record.approved_by == "you"
    assert out(record.output) == {"error": "the tool work was not run: the user declined it"}

    record = await asyncio.wait_for(calls.run("c3", "work", "{}"), 5)  # nobody answers
    assert record.approved_by == "timeout" and "did not approve it in time" in record.output
    assert approvals.pending() is None

    for policy, by, ok in (("yes", "--yes", True), ("no", "no terminal", False)):
        scripted = ToolCalls(registry, Approvals(policy, timeout=30))  # type: ignore[arg-type]
        record = await asyncio.wait_for(scripted.run("c4", "work", "{}"), 5)
        assert (record.approved_by, record.ran) == (by, ok)

    running = ToolCalls(registry, Approvals("yes", timeout=30))
    long = asyncio.create_task(running.run("c5", "work", '{"sleep": 30}'))
    await asyncio.sleep(0.1)
    assert running.busy
    running.interrupt()
    record = await asyncio.wait_for(long, 5)
    assert record.interrupted and "cancelled: the user interrupted" in record.output
    assert not running.busy
    assert ran == ['{"n": 1}', "{}", '{"sleep": 30}']


# --- called by the model on the local server --------------------------------------------------


def write_wav(path: Path, ms: float) -> Path:
    writer = WavWriter(path)
    writer.write(silence(ms))
    writer.close()
    return path


class Checking(LinePresenter):
    """Every event either way validates against openai's types; notices are kept."""

    def __init__(self) -> None:
        super().__init__(out=StringIO(), err=StringIO())
        self.sent: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []

    def event(self, event: Mapping[str, Any], direction: str) -> None:
        if direction == "client":
            validate_client_event(dict(event))
            self.sent.append(dict(event))
        else:
            validate_server_event(dict(event))
            self.received.append(dict(event))

    @property
    def lines(self) -> list[str]:
        assert isinstance(self.out, StringIO)
        return self.out.getvalue().splitlines()


async def call_with_tools(
    tmp_path: Path,
    tools: Mapping[str, ToolSpec],
    say: str,
    *,
    input_ms: float = 1500,
    approval: str = "no",
) -> tuple[CallSupervisor, Checking, list[dict[str, Any]]]:
    settings = replace(load_settings(env={}), tools=dict(tools))
    presenter = Checking()
    call = CallSupervisor(
        settings,
        TalkOptions(
            local=True,
            input=str(write_wav(tmp_path / "quiet.wav", input_ms)),
            output="none",
            say=(say,),
            transcript=tmp_path / "t.jsonl",
            approval=approval,  # type: ignore[arg-type]
        ),
        presenter,
        api_key=None,
        tools=build_registry(settings, list(tools)),
    )
    code = await asyncio.wait_for(call.run(), 60)
    assert code == ExitCode.OK, presenter.err.getvalue()
    transcript = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    return call, presenter, transcript


@pytest.mark.timeout(60)
async def test_command_tool_called_by_the_model_and_the_reply_is_spoken(tmp_path: Path) -> None:
    weather = ToolSpec(
        "weather",
        "Current weather for a city",
        command=tuple(
            script(
                tmp_path,
                "weather",
                """\
                import json, sys
                city = json.load(sys.stdin)["city"]
                print(json.dumps({"city": city, "temp_c": 18}))
                """,
            )
        ),
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
        approval="never",
    )
    _, presenter, transcript = await call_with_tools(
        tmp_path, {"weather": weather}, '/call weather {"city": "Paris"}'
    )
    declared = presenter.sent[0]
    assert declared["type"] == "session.update"
    assert declared["session"]["tools"] == [
        {
            "type": "function",
            "name": "weather",
            "description": "Current weather for a city",
            "parameters": dict(weather.parameters),
        }
    ]
    outputs = [e["item"] for e in presenter.sent if e["type"] == "conversation.item.create"]
    assert json.loads(outputs[-1]["output"]) == {"city": "Paris", "temp_c": 18}
    record = next(x for x in transcript if x["type"] == "function_call")
    assert record["name"] == "weather" and json.loads(record["arguments"]) == {"city": "Paris"}
    assert record["approved_by"] == "not needed" and record["duration_s"] > 0
    spoken = [x["text"] for x in transcript if x["type"] == "turn" and x["role"] == "assistant"]
    assert spoken[-1] == 'The tool weather returned: {"city": "Paris", "temp_c": 18}'


@pytest.mark.timeout(60)
async def test_http_tool_called_by_the_model(
    tmp_path: Path, http_tool_server: tuple[str, list[Any]]
) -> None:
    base, seen = http_tool_server
    tickets = ToolSpec("tickets", "Open tickets", http=f"{base}/echo", approval="ask")
    _, presenter, transcript = await call_with_tools(
        tmp_path, {"tickets": tickets}, '/call tickets {"customer": "ACME"}', approval="yes"
    )
    assert seen == [{"customer": "ACME"}]
    record = next(x for x in transcript if x["type"] == "function_call")
    assert record["approved_by"] == "--yes"
    spoken = [x["text"] for x in transcript if x["type"] == "turn" and x["role"] == "assistant"]
    assert spoken[-1] == 'The tool tickets returned: {"open_tickets": 2, "customer": "ACME"}'
    assert any(
        line.startswith('function: tickets({"customer": "ACME"}) -> ')
        and "approval: --yes]" in line
        for line in presenter.lines
    )


@pytest.mark.timeout(60)
async def test_a_hanging_tool_is_cancelled_at_its_timeout_and_the_call_goes_on(
    tmp_path: Path,
) -> None:
    hang = ToolSpec(
        "hang",
        "Never answers",
        command=(PY, "-c", "import time; time.sleep(60)"),
        timeout=1,
        approval="never",
    )
    call, _, transcript = await call_with_tools(tmp_path, {"hang": hang}, "/call hang {}")
    spoken = [x["text"] for x in transcript if x["type"] == "turn" and x["role"] == "assistant"]
    assert spoken[-1] == (
        'The tool hang returned: {"error": "the tool hang did not finish within 1 s"}'
    )
    assert call.end_reason == "the input file was sent and answered"


@pytest.mark.timeout(60)
async def test_audio_keeps_flowing_while_a_tool_runs_5_s(
    tmp_path: Path, served: tuple[subprocess.Popen[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server runs in its own process (as OpenAI's would), so what is measured is the
    client's loop alone: every microphone frame scheduled while the tool runs goes out within
    20 ms of its schedule."""
    from rtc_voice.audio.pcm import RATE
    from rtc_voice.audio.tracks import PcmTrack

    slow = ToolSpec(
        "slow",
        "Takes 5 s",
        command=(PY, "-c", "import time; time.sleep(5); print('{}')"),
        timeout=20,
        approval="never",
    )
    settings = replace(load_settings(env={}), tools={"slow": slow}, base_url=served[1])
    call = CallSupervisor(
        settings,
        TalkOptions(
            input=str(write_wav(tmp_path / "quiet.wav", 9000)),  # 9 s of microphone frames
            output="none",
            say=("/call slow {}",),
        ),
        LinePresenter(out=StringIO(), err=StringIO()),
        api_key=ApiKey("sk-test-local-0123456789", "env"),
        tools=build_registry(settings, ["slow"]),
    )
    frames: list[tuple[float, float]] = []  # (when the frame was due, how late it went out)
    next_frame = PcmTrack._next_frame

    async def timed(track: PcmTrack) -> Any:
        due = None if track._start is None else track._start + track._pts / RATE
        frame = await next_frame(track)
        if due is not None:
            frames.append((due, time.monotonic() - due))
        return frame

    monkeypatch.setattr(PcmTrack, "_next_frame", timed)
    # What earlier tests left in this process is not the call's: keep the collector from
    # walking it (a fresh `rtc-voice talk` process has none of it).
    gc.collect()
    gc.freeze()
    window: list[float] = []

    async def watch() -> None:
        while not call.tool_calls.busy:  # noqa: ASYNC110 - polling the call's state
            await asyncio.sleep(0.005)
        window.append(time.monotonic())
        while call.tool_calls.busy:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        window.append(time.monotonic())

    watcher = asyncio.create_task(watch())
    try:
        code = await asyncio.wait_for(call.run(), 60)
    finally:
        gc.unfreeze()
    await asyncio.wait_for(watcher, 5)
    assert code == ExitCode.OK
    start, end = window
    assert end - start >= 4.9  # the tool really ran its 5 s inside the call
    during = [late for due, late in frames if start <= due <= end]
    assert len(during) >= 0.95 * (end - start) * 50  # 50 frames a second kept going out
    worst = max(during) * 1000
    assert worst <= 20, f"a microphone frame went out {worst:.1f} ms late while the tool ran"


# --- approval in a real terminal ---------------------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (CI installs it)")
def test_approval_yes_no_and_timeout_in_the_terminal(tmp_path: Path) -> None:
    from tests.test_tui import Tmux

    tool = script(
        tmp_path,
        "ask",
        "import json, sys; print('ran-' + str(json.load(sys.stdin)['n']))",
    )
    config = write_config(
        tmp_path,
        f"""\
        [tools]
        approval_timeout = 3

        [tools.ask]
        description = "Needs a yes"
        command = {json.dumps(tool)}
        """,
    )
    quiet = write_wav(tmp_path / "quiet.wav", 60_000)
    talk = " ".join(
        shlex.quote(part)
        for part in (
            PY, "-m", "rtc_voice", "talk", "--local", "--config", str(config),
            "--input", str(quiet), "--output", "none", "--transcript", str(tmp_path / "t.jsonl"),
        )
    )  # fmt: skip
    env = f"XDG_CONFIG_HOME={shlex.quote(str(tmp_path))}"
    term = Tmux(f"env {env} {talk}; echo EXIT=$?; sleep 60")

    def flat(screen: str) -> str:  # the screen's words, unwrapped from lines and boxes
        return " ".join(screen.replace("│", " ").split())

    try:
        term.wait(lambda s: "connected" in s and "q quit" in s, "the connected screen")

        def ask(n: int) -> None:
            term.keys("t")
            term.wait(lambda s: "message>" in s, "the message prompt")
            term.keys("-l", f'/call ask {{"n": {n}}}')
            term.keys("Enter")
            term.wait(
                lambda s: f'Run tool ask {{"n": {n}}}?' in flat(s), f"the approval prompt {n}"
            )

        ask(1)
        term.keys("y")
        term.wait(lambda s: "The tool ask returned: ran-1" in flat(s), "the approved call's reply")
        ask(2)
        term.keys("n")
        term.wait(lambda s: "the user declined it" in flat(s), "the declined call's reply")
        ask(3)
        screen = term.wait(
            lambda s: "did not approve it in time" in flat(s), "the timeout", within=15
        )
        assert "Run tool ask" not in screen  # the prompt is gone once declined
        term.keys("q")
        final = term.wait(lambda s: "EXIT=" in s, "the process to exit")
        assert "EXIT=0" in final
    finally:
        term.kill()
    calls = [
        json.loads(line)
        for line in (tmp_path / "t.jsonl").read_text().splitlines()
        if '"function_call"' in line
    ]
    assert [(c["arguments"], c["approved_by"]) for c in calls] == [
        ('{"n": 1}', "you"),
        ('{"n": 2}', "you"),
        ('{"n": 3}', "timeout"),
    ]
    assert calls[0]["output"] == "ran-1" and calls[0]["duration_s"] > 0
    assert "the user declined it" in calls[1]["output"]


@pytest.mark.timeout(60)
async def test_interrupt_cancels_a_running_tool_and_the_model_is_told(tmp_path: Path) -> None:
    from rtc_voice.call.controls import Interrupt

    pid_file = tmp_path / "wait.pid"
    wait = ToolSpec(
        "wait",
        "Waits a long time",
        command=tuple(
            script(
                tmp_path,
                "wait",
                f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
                "time.sleep(60)",
            )
        ),
        timeout=60,
        approval="never",
    )
    settings = replace(load_settings(env={}), tools={"wait": wait})
    presenter = Checking()
    call = CallSupervisor(
        settings,
        TalkOptions(
            local=True,
            input=str(write_wav(tmp_path / "quiet.wav", 1500)),
            output="none",
            say=("/call wait {}",),
            transcript=tmp_path / "t.jsonl",
        ),
        presenter,
        api_key=None,
        tools=build_registry(settings, ["wait"]),
    )

    async def interrupt_once_running() -> None:
        while not pid_file.exists():  # noqa: ASYNC110 - the tool says when it runs
            await asyncio.sleep(0.02)
        call.send(Interrupt())

    interrupter = asyncio.create_task(interrupt_once_running())
    code = await asyncio.wait_for(call.run(), 60)
    await asyncio.wait_for(interrupter, 5)
    assert code == ExitCode.OK
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)
    output_at = next(
        i
        for i, e in enumerate(presenter.sent)
        if e["type"] == "conversation.item.create" and e["item"]["type"] == "function_call_output"
    )
    assert json.loads(presenter.sent[output_at]["item"]["output"]) == {
        "error": "the tool wait was cancelled: the user interrupted"
    }
    assert "response.create" not in kinds_after(presenter.sent, output_at)  # no reply forced


def kinds_after(events: list[dict[str, Any]], index: int) -> list[str]:
    return [e["type"] for e in events[index + 1 :]]


async def test_calls_of_one_response_run_concurrently_in_order() -> None:
    from rtc_voice.tools import Tool

    both_running = asyncio.Barrier(2)

    async def meet(arguments: Mapping[str, Any]) -> str:
        await both_running.wait()  # would time out if the calls ran one after another
        return f"met {arguments['n']}"

    calls = ToolCalls(
        ToolRegistry([Tool("meet", "m", meet, timeout=5, approval="never")]),
        Approvals("no", timeout=1),
    )
    records = await asyncio.wait_for(
        calls.run_all([("c1", "meet", '{"n": 1}'), ("c2", "meet", '{"n": 2}')]), 10
    )
    assert [(r.call_id, r.output, r.approved_by) for r in records] == [
        ("c1", "met 1", "not needed"),
        ("c2", "met 2", "not needed"),
    ]


def test_the_footer_asks_about_a_pending_call() -> None:
    from rtc_voice.call.supervisor import _approval_question
    from rtc_voice.conversation import FunctionCall
    from rtc_voice.tools.approval import PendingApproval
    from rtc_voice.ui.render import View

    done = FunctionCall(
        item_id="i1",
        name="weather",
        arguments='{"city": "Paris"}',
        output='{"temp_c": 18}',
        status="completed",
        duration_s=1.25,
        approved_by="you",
    )
    pending = PendingApproval("c2", "tickets", '{"customer": "ACME"}', None, deadline=127.2)
    question = _approval_question(pending, now=100.0)
    assert [key for key, _, _ in question.answers] == ["y", "n"]
    view = View(phase="connected", turns=(done,), question=question)
    text = _render(view)
    assert 'Run tool tickets {"customer": "ACME"}?  (27 s left)' in text
    assert "y yes" in text and "n no" in text
    assert 'ƒ weather({"city": "Paris"}) → {"temp_c": 18}  (1.2 s, approval: you)' in text
    assert "Run tool" not in _render(replace(view, question=None))


def _render(view: Any) -> str:
    from rich.console import Console

    from rtc_voice.ui.render import screen

    console = Console(file=StringIO(), width=100, color_system=None)
    console.print(screen(view, 100, 20))
    return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def test_the_commented_examples_in_config_example_are_valid(tmp_path: Path) -> None:
    from rtc_voice.config import example_toml

    text = example_toml()
    examples = text[text.index("# [tools.weather]") :].splitlines()
    body = "\n".join(
        line[2:] for line in examples if re.match(r"^# (\[[a-z.]+\]|[a-z_]+ = )", line)
    )
    config = tmp_path / "config.toml"
    config.write_text(body + "\n")
    settings = load_settings(config_flag=config, env={})
    assert set(settings.tools) == {"weather", "tickets"}
    assert set(settings.mcp) == {"github"}
    assert settings.mcp["github"].definition({"GITHUB_TOKEN": "t"})["allowed_tools"] == [
        "search_issues",
        "get_issue",
    ]


@pytest.mark.timeout(90)
def test_yes_in_a_script_runs_ask_tools_and_without_it_they_are_declined(tmp_path: Path) -> None:
    tool = script(tmp_path, "ask", "print('ran')")
    config = write_config(
        tmp_path,
        f"""\
        [tools.ask]
        description = "Needs a yes"
        command = {json.dumps(tool)}
        """,
    )
    quiet = write_wav(tmp_path / "quiet.wav", 1500)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    env.pop("OPENAI_API_KEY", None)

    def talk(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            rtc_voice(
                "talk", "--local", "--config", str(config), "--input", str(quiet),
                "--output", "none", "--say", "/call ask {}", *extra,
            ),
            env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    allowed = talk("--yes")
    assert allowed.returncode == 0, allowed.stderr
    assert any(
        line.startswith("function: ask({}) -> ran [") and line.endswith("approval: --yes]")
        for line in allowed.stdout.splitlines()
    ), allowed.stdout
    assert "assistant: The tool ask returned: ran" in allowed.stdout

    declined = talk()
    assert declined.returncode == 0, declined.stderr
    assert "approval: no terminal]" in declined.stdout
    assert (
        'assistant: The tool ask returned: {"error": "the tool ask was not run: it needs the '
        "user's approval and there is no terminal to ask on (the user can allow it with --yes)"
        '"}'
    ) in declined.stdout.splitlines()
    assert "run with --yes to allow it" in declined.stderr

    unknown = talk("--tool", "aks")
    assert unknown.returncode == 2
    assert (
        "No tool named 'aks' (--tool)." in unknown.stderr
        and "Did you mean 'ask'?" in unknown.stderr
    )
