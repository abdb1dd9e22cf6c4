"""Pure but for secrets: MCP servers declared in the config file (`[mcp.NAME]`), validated with
file and line, and turned into the session's `type: "mcp"` tools (OpenAI's side calls them).

Header values are never written in the file when they are secret: `{ env = "VAR" }` reads an
environment variable, `{ keyring = "ENTRY" }` the OS keyring (service rtc-voice), each with an
optional `prefix` such as "Bearer "; a plain string is sent as it is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rtc_voice.errors import ConfigError
from rtc_voice.tools.spec import NAME_RE, check_keys, find_line, table_error

MCP_KEYS = ("url", "description", "headers", "allowed_tools", "require_approval")
Approval = Literal["always", "never"]


@dataclass(frozen=True)
class HeaderSource:
    literal: str | None = None
    env: str | None = None
    keyring: str | None = None
    prefix: str = ""


@dataclass(frozen=True)
class McpSpec:
    label: str
    url: str
    description: str | None = None
    headers: Mapping[str, HeaderSource] = field(default_factory=dict)
    allowed_tools: tuple[str, ...] | None = None
    require_approval: Approval = "always"
    where: str = ""

    def summary(self) -> str:
        allowed = ", ".join(self.allowed_tools) if self.allowed_tools is not None else "all tools"
        return f"{self.url} ({allowed}; approval {self.require_approval})"

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "description": self.description,
            "headers": sorted(self.headers),
            "allowed_tools": list(self.allowed_tools) if self.allowed_tools is not None else None,
            "require_approval": self.require_approval,
        }

    def resolve_headers(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """The header values, read now from the environment or the keyring."""
        env = os.environ if env is None else env
        out: dict[str, str] = {}
        for name, source in self.headers.items():
            if source.literal is not None:
                out[name] = source.literal
                continue
            if source.env is not None:
                value = env.get(source.env)
                missing = f"the environment variable {source.env} is not set"
            else:
                from rtc_voice.credentials import read_secret

                assert source.keyring is not None
                value = read_secret(source.keyring)
                missing = f"the keyring has no entry {source.keyring!r} (service rtc-voice)"
            if not value:
                raise ConfigError(
                    f"{self.where}: header {name} of MCP server '{self.label}': {missing}.",
                    hint="Set it, or remove the header from [mcp." + self.label + "].",
                )
            out[name] = source.prefix + value
        return out

    def definition(self, env: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The session's `tools` entry."""
        tool: dict[str, Any] = {
            "type": "mcp",
            "server_label": self.label,
            "server_url": self.url,
            "require_approval": self.require_approval,
        }
        if self.description:
            tool["server_description"] = self.description
        headers = self.resolve_headers(env)
        if headers:
            tool["headers"] = headers
        if self.allowed_tools is not None:
            tool["allowed_tools"] = list(self.allowed_tools)
        return tool


def parse_mcp(label: str, table: object, path: Path, text: str) -> McpSpec:
    section = f"mcp.{label}"
    example = "See config.example.toml or the README's MCP section."

    def fail(key: str | None, message: str, hint: str = example) -> ConfigError:
        return table_error(path, text, section, key, message, hint)

    if not isinstance(table, dict):
        raise fail(None, f"'{section}' must be a table.")
    if not NAME_RE.match(label):
        raise fail(None, f"Invalid MCP server label '{label}': letters, digits, _ and - only.")
    check_keys(table, MCP_KEYS, section, fail)
    url = table.get("url")
    if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
        raise fail("url", f'[{section}] needs url = "https://…", the MCP server\'s endpoint.')
    description = table.get("description")
    if description is not None and not isinstance(description, str):
        raise fail("description", f"'{section}.description' must be a string.")
    headers: dict[str, HeaderSource] = {}
    raw_headers = table.get("headers", {})
    if not isinstance(raw_headers, dict):
        raise fail("headers", f"'{section}.headers' must be a table of header names.")
    for name, value in raw_headers.items():
        if isinstance(value, str):
            headers[name] = HeaderSource(literal=value)
        elif (
            isinstance(value, dict)
            and set(value) <= {"env", "keyring", "prefix"}
            and len({"env", "keyring"} & set(value)) == 1
            and all(isinstance(v, str) and v for k, v in value.items() if k != "prefix")
            and isinstance(value.get("prefix", ""), str)
        ):
            headers[name] = HeaderSource(
                env=value.get("env"), keyring=value.get("keyring"), prefix=value.get("prefix", "")
            )
        else:
            raise fail(
                "headers",
                f"Header '{name}' in [{section}] must be a string, {{ env = \"VAR\" }} or "
                '{ keyring = "ENTRY" }, optionally with prefix = "Bearer ".',
            )
    allowed = table.get("allowed_tools")
    if allowed is not None and (
        not isinstance(allowed, list) or not all(isinstance(a, str) and a for a in allowed)
    ):
        raise fail("allowed_tools", f"'{section}.allowed_tools' must be a list of tool names.")
    approval = table.get("require_approval", "always")
    if approval not in ("always", "never"):
        raise fail(
            "require_approval",
            f'\'{section}.require_approval\' must be "always" (ask before each call) or "never".',
        )
    line = find_line(text, section)
    return McpSpec(
        label=label,
        url=url,
        description=description,
        headers=headers,
        allowed_tools=tuple(allowed) if allowed is not None else None,
        require_approval=approval,
        where=f"{path}:{line}" if line else str(path),
    )
