"""Function tools the model may call: a registry of tools, each run as a task with a timeout.

A tool is a name, a description, a JSON-schema `parameters` object and an async `run(arguments)`
that returns the output text. Whatever happens (bad JSON arguments, an unknown name, an
exception, the timeout), `ToolRegistry.run` returns an output the model can read, so it can tell
the user what went wrong; it never raises but for cancellation.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rtc_voice.tools.builtin import get_time

JSON = dict[str, Any]
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    run: Callable[[Mapping[str, Any]], Awaitable[str]]
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}, "additionalProperties": False}
    )
    timeout: float = DEFAULT_TIMEOUT

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
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def names(self) -> list[str]:
        return list(self._tools)

    def definitions(self) -> list[JSON]:
        return [tool.definition() for tool in self._tools.values()]

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
            async with asyncio.timeout(tool.timeout):
                return await tool.run(args)
        except TimeoutError:
            return error_output(f"the tool {name} did not finish within {tool.timeout:g} s")
        except Exception as exc:
            return error_output(f"the tool {name} failed: {type(exc).__name__}: {exc}")


def default_registry() -> ToolRegistry:
    """The built-in tools `talk` offers."""
    return ToolRegistry([get_time()])
