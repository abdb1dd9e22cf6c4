"""Pure: the user's tools as declared in the config file (`[tools.NAME]`), validated, with the
file and line of every mistake.

A tool runs a command (`command = [argv...]`: the arguments as JSON on stdin, stdout is the
result; no shell) or POSTs to a URL (`http = "URL"`: the arguments as the JSON body, the response
body is the result). `parameters` is the JSON schema the model fills in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rtc_voice.errors import ConfigError

Approval = Literal["ask", "never"]
APPROVALS: tuple[Approval, ...] = ("ask", "never")
TOOL_KEYS = ("description", "parameters", "command", "http", "timeout", "approval")
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 600.0
EMPTY_PARAMETERS: Mapping[str, Any] = {"type": "object", "properties": {}}
BUILTIN_NAMES = ("get_time",)


@dataclass(frozen=True)
class ToolSpec:
    """One `[tools.NAME]` table."""

    name: str
    description: str
    command: tuple[str, ...] | None = None
    http: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=lambda: dict(EMPTY_PARAMETERS))
    timeout: float = DEFAULT_TIMEOUT
    approval: Approval = "ask"
    where: str = ""  # "file:line" of its table, for messages

    @property
    def kind(self) -> str:
        return "command" if self.command is not None else "http"

    def as_json(self) -> dict[str, Any]:
        """For `config show --json`."""
        out: dict[str, Any] = {"description": self.description}
        if self.command is not None:
            out["command"] = list(self.command)
        else:
            out["http"] = self.http
        out |= {
            "parameters": dict(self.parameters),
            "timeout": self.timeout,
            "approval": self.approval,
        }
        return out

    def summary(self) -> str:
        """One line for `config show`."""
        target = " ".join(self.command) if self.command is not None else f"POST {self.http}"
        return f"{target} (approval {self.approval}, timeout {self.timeout:g} s)"


def find_line(text: str, table: str, key: str | None = None) -> int | None:
    """The 1-based line of `key` inside `[table]` (or of the table's header when `key` is None or
    not written there), or of `name = {...}` for an inline table; None when not found."""
    header_re = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
    parent, _, leaf = table.rpartition(".")
    current = ""
    header_line: int | None = None
    inline_line: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = header_re.match(line)
        if match:
            current = re.sub(r"[\s\"']", "", match.group(1))
            if current == table:
                header_line = number
            continue
        if (
            key is not None
            and current == table
            and re.match(rf"^\s*\"?{re.escape(key)}\"?\s*=", line)
        ):
            return number
        if current == parent and re.match(rf"^\s*\"?{re.escape(leaf)}\"?\s*=", line):
            inline_line = number
    return header_line or inline_line


def table_error(
    path: Path, text: str, table: str, key: str | None, message: str, hint: str
) -> ConfigError:
    """A mistake in a [tools.NAME] or [mcp.NAME] table, at the key's line when it can be found."""
    line = find_line(text, table, key)
    where = f"{path}:{line}" if line else str(path)
    return ConfigError(f"{where}: {message}", hint=hint)


def check_keys(
    table: Mapping[str, Any],
    allowed: Sequence[str],
    section: str,
    fail: Callable[[str | None, str, str], ConfigError],
) -> None:
    """Every key of the table is one of `allowed`; the first that is not gets a "did you mean"."""
    for key in table:
        if key not in allowed:
            import difflib

            guess = difflib.get_close_matches(key, allowed, n=1, cutoff=0.5)
            raise fail(
                key,
                f"Unknown key '{key}' in [{section}].",
                f"Did you mean '{guess[0]}'?" if guess else "Keys: " + ", ".join(allowed) + ".",
            )


def _check_schema(schema: object) -> str | None:
    """Why `schema` is not a usable JSON schema for function parameters, or None."""
    if not isinstance(schema, dict):
        return "must be a table (a JSON schema object)"
    if schema.get("type") != "object":
        return 'must be a JSON schema with type = "object" (the arguments are a JSON object)'
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = ".".join(str(p) for p in exc.path)
        return f"is not a valid JSON schema: {exc.message}" + (f" (at {where})" if where else "")
    return None


def parse_tool(name: str, table: object, path: Path, text: str) -> ToolSpec:
    """Validate one `[tools.NAME]` table; every mistake is a ConfigError naming file and line."""
    section = f"tools.{name}"
    example = "See config.example.toml or the README's Tools section."

    def fail(key: str | None, message: str, hint: str = example) -> ConfigError:
        return table_error(path, text, section, key, message, hint)

    if not isinstance(table, dict):
        raise fail(
            None, f"'{section}' must be a table.", "Write [tools.NAME] with description = ..."
        )
    if not NAME_RE.match(name):
        raise fail(
            None,
            f"Invalid tool name '{name}': letters, digits, _ and - only, at most 64.",
            "Rename the [tools.NAME] table.",
        )
    if name in BUILTIN_NAMES:
        raise fail(
            None,
            f"'{name}' is a built-in tool; a declared tool cannot replace it.",
            f"Pick another name, or turn the built-in off with tools.{name} = false.",
        )
    check_keys(table, TOOL_KEYS, section, fail)
    description = table.get("description")
    if not isinstance(description, str) or not description.strip():
        raise fail(
            "description",
            f"[{section}] needs a description: the model reads it to decide when to call it.",
        )
    parameters = table.get("parameters", dict(EMPTY_PARAMETERS))
    problem = _check_schema(parameters)
    if problem:
        raise fail("parameters", f"'{section}.parameters' {problem}.")
    command = table.get("command")
    http = table.get("http")
    if command is None and http is None:
        raise fail(
            None,
            f'[{section}] needs command = ["program", "arg", ...] or http = "URL".',
        )
    if command is not None and http is not None:
        raise fail("http", f"[{section}] has both command and http; a tool runs one of them.")
    argv: tuple[str, ...] | None = None
    if command is not None:
        if isinstance(command, str):
            raise fail(
                "command",
                f"'{section}.command' must be a list of strings, not one string: tools run "
                "without a shell.",
                f"Write command = {command.split()!r}".replace("'", '"'),
            )
        if (
            not isinstance(command, list)
            or not command
            or not all(isinstance(a, str) and a for a in command)
        ):
            raise fail("command", f"'{section}.command' must be a non-empty list of strings.")
        program = command[0]
        if "/" in program and not Path(program).is_absolute():
            program = str((path.parent / program).resolve())  # relative to the config file
        argv = (program, *command[1:])
    if http is not None and (not isinstance(http, str) or not re.match(r"^https?://[^/\s]+", http)):
        raise fail("http", f"'{section}.http' must be an http:// or https:// URL.")
    timeout = table.get("timeout", DEFAULT_TIMEOUT)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_TIMEOUT
    ):
        raise fail(
            "timeout",
            f"'{section}.timeout' must be a number of seconds, more than 0 to {MAX_TIMEOUT:g}.",
        )
    approval = table.get("approval", "ask")
    if approval not in APPROVALS:
        raise fail(
            "approval",
            f'\'{section}.approval\' must be "ask" (ask before each call) or "never" '
            "(run without asking).",
        )
    line = find_line(text, section)
    return ToolSpec(
        name=name,
        description=description.strip(),
        command=argv,
        http=http if isinstance(http, str) else None,
        parameters=parameters,
        timeout=float(timeout),
        approval=approval,
        where=f"{path}:{line}" if line else str(path),
    )
