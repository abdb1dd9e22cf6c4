"""MCP servers: declared in the config, sent to the session as `type: "mcp"` tools, listed and
called by the local server against a real MCP server (the `mcp` package) on 127.0.0.1, with the
approval request answered from the same y / n as our own tools. Every event either way is
validated against openai.types.realtime."""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rtc_voice.call.supervisor import CallSupervisor, TalkOptions
from rtc_voice.config import load_settings
from rtc_voice.errors import ConfigError, ExitCode
from rtc_voice.tools import build_registry
from rtc_voice.tools.mcp import HeaderSource, McpSpec
from tests.test_user_tools import Checking, write_wav

mcp_server = pytest.importorskip("mcp.server.mcpserver")
ToolError = pytest.importorskip("mcp.server.mcpserver.exceptions").ToolError
uvicorn = pytest.importorskip("uvicorn")


class McpServer:
    """A small MCP server written with the `mcp` package, served over streamable HTTP."""

    def __init__(self) -> None:
        server = mcp_server.MCPServer("calc")

        @server.tool()
        def add(a: int, b: int) -> int:
            """Add two whole numbers."""
            return a + b

        @server.tool()
        def explode(reason: str) -> str:
            """Always fails, saying why."""
            raise ToolError(reason)

        inner = server.streamable_http_app()
        self.headers: list[dict[str, str]] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                self.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
            await inner(scope, receive, send)

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started, "the MCP server did not start"
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/mcp"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def calc() -> Iterator[tuple[str, McpServer]]:
    server = McpServer()
    with server as url:
        yield url, server


async def mcp_call(
    tmp_path: Path, spec: McpSpec, say: str, approval: str
) -> tuple[Checking, list[dict[str, Any]]]:
    settings = replace(load_settings(env={}), mcp={spec.label: spec}, get_time=False)
    presenter = Checking()
    call = CallSupervisor(
        settings,
        TalkOptions(
            local=True,
            input=str(write_wav(tmp_path / "quiet.wav", 1500)),
            output="none",
            say=(say,),
            transcript=tmp_path / "t.jsonl",
            approval=approval,  # type: ignore[arg-type]
        ),
        presenter,
        api_key=None,
        tools=build_registry(settings),
    )
    code = await asyncio.wait_for(call.run(), 60)
    assert code == ExitCode.OK, presenter.err.getvalue()
    transcript = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    return presenter, transcript


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


@pytest.mark.timeout(60)
async def test_list_tools_and_a_call_without_approval(
    tmp_path: Path, calc: tuple[str, McpServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, server = calc
    monkeypatch.setenv("CALC_TOKEN", "s3cret")
    spec = McpSpec(
        "calc",
        url,
        headers={"Authorization": HeaderSource(env="CALC_TOKEN", prefix="Bearer ")},
        allowed_tools=("add",),
        require_approval="never",
    )
    presenter, transcript = await mcp_call(tmp_path, spec, '/call add {"a": 2, "b": 3}', "no")
    declared = presenter.sent[0]["session"]["tools"]
    assert declared == [
        {
            "type": "mcp",
            "server_label": "calc",
            "server_url": url,
            "require_approval": "never",
            "headers": {"Authorization": "Bearer s3cret"},
            "allowed_tools": ["add"],
        }
    ]
    assert all(h.get("authorization") == "Bearer s3cret" for h in server.headers)
    got = kinds(presenter.received)
    for expected in (
        "mcp_list_tools.in_progress",
        "mcp_list_tools.completed",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
    ):
        assert expected in got, expected
    assert got.index("mcp_list_tools.completed") < got.index("response.mcp_call.in_progress")
    listed = next(
        e["item"]
        for e in presenter.received
        if e["type"] == "conversation.item.done" and e["item"]["type"] == "mcp_list_tools"
    )
    assert [t["name"] for t in listed["tools"]] == ["add"]  # allowed_tools applies
    call = next(
        e["item"]
        for e in presenter.received
        if e["type"] == "response.output_item.done" and e["item"]["type"] == "mcp_call"
    )
    assert (call["name"], json.loads(call["arguments"]), call["output"]) == (
        "add",
        {"a": 2, "b": 3},
        "5",
    )
    records = [x for x in transcript if x["type"] == "function_call"]
    assert [(r["name"], r["output"]) for r in records] == [
        ("calc: list tools", "add"),
        ("calc.add", "5"),
    ]
    spoken = [x["text"] for x in transcript if x["type"] == "turn" and x["role"] == "assistant"]
    assert spoken[-1] == "The tool add returned: 5"
    assert any(
        line.startswith('function: calc.add({"a": 2, "b": 3}) -> 5') for line in presenter.lines
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("policy", "by"), [("yes", "--yes"), ("no", "no terminal")])
async def test_approval_request_is_answered_from_the_same_prompt(
    tmp_path: Path, calc: tuple[str, McpServer], policy: str, by: str
) -> None:
    url, _ = calc
    spec = McpSpec("calc", url, require_approval="always")
    presenter, transcript = await mcp_call(tmp_path, spec, '/call add {"a": 1, "b": 1}', policy)
    request = next(
        e["item"]
        for e in presenter.received
        if e["type"] == "response.output_item.done" and e["item"]["type"] == "mcp_approval_request"
    )
    answer = next(
        e["item"]
        for e in presenter.sent
        if e["type"] == "conversation.item.create" and e["item"]["type"] == "mcp_approval_response"
    )
    assert answer["approval_request_id"] == request["id"]
    assert answer["approve"] is (policy == "yes")
    spoken = [x["text"] for x in transcript if x["type"] == "turn" and x["role"] == "assistant"]
    asked = next(x for x in transcript if x.get("item_id") == request["id"])
    assert (asked["name"], asked["arguments"], asked["approved_by"]) == (
        "calc.add",
        '{"a": 1, "b": 1}',
        by,
    )
    if policy == "yes":
        assert asked["output"] == "approved"
        call = next(
            e["item"]
            for e in presenter.received
            if e["type"] == "response.output_item.done" and e["item"]["type"] == "mcp_call"
        )
        assert call["approval_request_id"] == request["id"] and call["output"] == "2"
        record = next(x for x in transcript if x.get("item_id") == call["id"])
        assert record["approved_by"] == by and record["output"] == "2"
        assert spoken[-1] == "The tool add returned: 2"
    else:
        assert "response.mcp_call.in_progress" not in kinds(presenter.received)
        assert spoken[-1] == "You declined the call to add."
        assert "there is no terminal to ask on" in json.loads(asked["output"])["error"]
        assert "no terminal to ask on" in presenter.err.getvalue()


@pytest.mark.timeout(60)
async def test_a_failing_mcp_tool_is_a_failed_call(
    tmp_path: Path, calc: tuple[str, McpServer]
) -> None:
    url, _ = calc
    spec = McpSpec("calc", url, require_approval="never")
    presenter, transcript = await mcp_call(tmp_path, spec, '/call explode {"reason": "boom"}', "no")
    assert "response.mcp_call.failed" in kinds(presenter.received)
    call = next(
        e["item"]
        for e in presenter.received
        if e["type"] == "response.output_item.done" and e["item"]["type"] == "mcp_call"
    )
    assert call["error"]["type"] == "tool_execution_error" and "boom" in call["error"]["message"]
    record = next(x for x in transcript if x.get("name") == "calc.explode")
    assert "boom" in json.loads(record["output"])["error"]


def test_mcp_servers_in_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        textwrap.dedent(
            """\
            [mcp.github]
            url = "https://api.example.com/mcp"
            headers = { Authorization = { env = "GH_TOKEN", prefix = "Bearer " } }
            allowed_tools = ["search"]
            require_approval = "never"
            """
        )
    )
    spec = load_settings(config_flag=config, env={}).mcp["github"]
    assert spec.definition({"GH_TOKEN": "t0k"})["headers"] == {"Authorization": "Bearer t0k"}
    assert spec.where == f"{config}:1"
    with pytest.raises(ConfigError, match=r"header Authorization .* GH_TOKEN is not set"):
        spec.definition({})
    config.write_text('[mcp.github]\nurl = "https://x/mcp"\nrequire_aproval = "never"\n')
    with pytest.raises(ConfigError, match=rf"^{config}:3: Unknown key 'require_aproval'"):
        load_settings(config_flag=config, env={})


@pytest.mark.timeout(90)
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (CI installs it)")
def test_mcp_approval_on_the_screen(tmp_path: Path, calc: tuple[str, McpServer]) -> None:
    from tests.test_tui import Tmux

    url, _ = calc
    config = tmp_path / "config.toml"
    config.write_text(f'[tools]\nget_time = false\n\n[mcp.calc]\nurl = "{url}"\n')
    quiet = write_wav(tmp_path / "quiet.wav", 60_000)
    talk = " ".join(
        shlex.quote(part)
        for part in (
            sys.executable, "-m", "rtc_voice", "talk", "--local", "--config", str(config),
            "--input", str(quiet), "--output", "none",
        )
    )  # fmt: skip
    term = Tmux(f"env XDG_CONFIG_HOME={shlex.quote(str(tmp_path))} {talk}; echo EXIT=$?; sleep 60")

    def flat(screen: str) -> str:
        return " ".join(screen.replace("│", " ").split())

    try:
        term.wait(lambda s: "calc: list tools → add, explode" in flat(s), "the listed tools")
        term.keys("t")
        term.wait(lambda s: "message>" in s, "the message prompt")
        term.keys("-l", '/call add {"a": 20, "b": 22}')
        term.keys("Enter")
        term.wait(lambda s: 'Run tool add on calc {"a": 20, "b": 22}?' in flat(s), "the MCP prompt")
        term.keys("y")
        term.wait(lambda s: "The tool add returned: 42" in flat(s), "the reply")
        term.keys("q")
        assert "EXIT=0" in term.wait(lambda s: "EXIT=" in s, "the process to exit")
    finally:
        term.kill()
