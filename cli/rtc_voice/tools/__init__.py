"""Function tools the model may call: a registry of tools, each run as a task with a timeout.

A tool is a name, a description, a JSON-schema `parameters` object and an async `run(arguments)`
that returns the output text. Whatever happens (bad JSON arguments, an unknown name, an
exception, the timeout), `ToolRegistry.run` returns an output the model can read, so it can tell
the user what went wrong; it never raises but for cancellation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rtc_voice.tools.builtin import get_time

if TYPE_CHECKING:
    from rtc_voice.config import Settings

JSON = dict[str, Any]
DEFAULT_TIMEOUT = 10.0


class ToolFailed(Exception):
    """A tool ran and failed; the message goes to the model as it is."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    run: Callable[[Mapping[str, Any]], Awaitable[str]]
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}, "additionalProperties": False}
    )
    timeout: float = DEFAULT_TIMEOUT
    approval: str = "never"  # "ask": the user approves each call first

    def definition(self) -> JSON:
        """The `session.tools` entry for this tool."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": dict(self.parameters),
        }


def error_output(message: str) -> str:
    return json.dumps({"error": message})


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self.servers: list[JSON] = []  # `type: "mcp"` tools: OpenAI's side calls them
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def definitions(self) -> list[JSON]:
        return [tool.definition() for tool in self._tools.values()] + list(self.servers)

    async def run(self, name: str, arguments: str) -> str:
        """The tool's output as text (errors too, as `{"error": ...}`)."""
        try:
            args = json.loads(arguments or "{}")
            if not isinstance(args, dict):
                raise ValueError("arguments must be a JSON object")
        except ValueError as exc:
            return error_output(f"invalid arguments: {exc}")
        tool = self._tools.get(name)
        if tool is None:
            return error_output(f"unknown tool {name!r}")
        try:
            import asyncio  # here, not at the top: config.py loads this package

            async with asyncio.timeout(tool.timeout):
                return await tool.run(args)
        except TimeoutError:
            return error_output(f"the tool {name} did not finish within {tool.timeout:g} s")
        except ToolFailed as exc:
            return error_output(str(exc))
        except Exception as exc:
            return error_output(f"the tool {name} failed: {type(exc).__name__}: {exc}")


def default_registry() -> ToolRegistry:
    """The built-in tools `talk` offers."""
    return ToolRegistry([get_time()])


def build_registry(
    settings: Settings,
    chosen: Sequence[str] = (),
    *,
    no_tools: bool = False,
    secrets: tuple[str, ...] = (),
) -> ToolRegistry:
    """The tools one call offers: the built-in get_time (unless turned off) and every declared
    tool, or only those named with `--tool`, or none with `--no-tools`. A command that cannot be
    found is a config error naming the tool's table."""
    import shutil

    from rtc_voice.errors import ConfigError, UsageError

    if no_tools and chosen:
        raise UsageError("--tool and --no-tools contradict each other.", hint="Pick one.")
    available = (["get_time"] if settings.get_time else []) + list(settings.tools)
    available += list(settings.mcp)
    for name in chosen:
        if name not in available and name != "get_time":
            import difflib

            guess = difflib.get_close_matches(name, available, n=1, cutoff=0.5)
            raise UsageError(
                f"No tool named '{name}' (--tool).",
                hint=f"Did you mean '{guess[0]}'?"
                if guess
                else "Declared tools: "
                + (", ".join(available) or "none")
                + "; see `rtc-voice config show`.",
            )
    if no_tools:
        return ToolRegistry()
    names = list(dict.fromkeys(chosen)) if chosen else available
    registry = ToolRegistry()
    env: dict[str, str] | None = None
    for name in names:
        if name == "get_time":
            registry.add(get_time())
            continue
        if name in settings.mcp:
            registry.servers.append(settings.mcp[name].definition())
            continue
        # the runners load only for a declared tool (not on the way to a call with get_time)
        from rtc_voice.tools.runners import command_env, declared_tool

        if env is None:
            env = command_env(settings.tool_env, secrets)
        spec = settings.tools[name]
        if spec.command is not None:
            program = spec.command[0]
            found = (
                os.access(program, os.X_OK)
                if "/" in program
                else shutil.which(program, path=env.get("PATH"))
            )
            if not found:
                raise ConfigError(
                    f"{spec.where}: the command of tool '{name}', {program}, "
                    + ("is not an executable file." if "/" in program else "is not on PATH."),
                    hint="Fix [tools." + name + "].command, or leave the tool out with --tool.",
                )
        registry.add(declared_tool(spec, env))
    return registry
