"""The local server's side of MCP tools: it lists and calls a session's `type: "mcp"` servers
itself, as OpenAI's does, when they are on this machine (127.0.0.1, ::1, localhost).

The MCP client is a small JSON-RPC exchange over streamable HTTP with aiohttp (initialize, the
initialized notification, then `tools/list` or `tools/call`; answers as JSON or as server-sent
events). The tests check it against a server written with the `mcp` package.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

JSON = dict[str, Any]
PROTOCOL_VERSION = "2025-06-18"
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
TIMEOUT_S = 20.0


class McpError(Exception):
    """Listing or calling failed; the message says why, for the conversation."""


def is_local(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


def _from_sse(text: str, request_id: int) -> JSON | None:
    for block in text.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(
            line[5:].lstrip() for line in block.split("\n") if line.startswith("data:")
        )
        if not data:
            continue
        try:
            message = json.loads(data)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("id") == request_id:
            return message
    return None


class McpClient:
    def __init__(self, url: str, headers: Mapping[str, str] | None = None) -> None:
        if not is_local(url):
            raise McpError(f"the local server only calls MCP servers on this machine, not {url}")
        self.url = url
        self.headers = dict(headers or {})

    async def _exchange(self, method: str, params: JSON) -> JSON:
        """One session: initialize, then `method`; its `result`."""
        import aiohttp

        headers = {
            **self.headers,
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        }
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http:
                init = {
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "rtc-voice-local-server", "version": "1"},
                }
                _, session_id = await self._post(http, headers, 1, "initialize", init)
                if session_id:
                    headers["Mcp-Session-Id"] = session_id
                headers["MCP-Protocol-Version"] = PROTOCOL_VERSION
                notice = {"jsonrpc": "2.0", "method": "notifications/initialized"}
                async with http.post(self.url, json=notice, headers=headers) as reply:
                    await reply.read()
                result, _ = await self._post(http, headers, 2, method, params)
                if session_id:
                    async with http.delete(self.url, headers=headers) as reply:
                        await reply.read()
                return result
        except aiohttp.ClientError as exc:
            raise McpError(f"cannot reach the MCP server at {self.url}: {exc}") from None
        except TimeoutError:
            raise McpError(f"the MCP server at {self.url} did not answer in time") from None

    async def _post(
        self, http: Any, headers: Mapping[str, str], request_id: int, method: str, params: JSON
    ) -> tuple[JSON, str | None]:
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        async with http.post(self.url, json=body, headers=headers) as reply:
            text = await reply.text()
            if reply.status >= 400:
                raise McpError(f"the MCP server answered HTTP {reply.status} to {method}")
            kind = reply.headers.get("Content-Type", "")
            session_id = reply.headers.get("Mcp-Session-Id")
        message = _from_sse(text, request_id) if "event-stream" in kind else json.loads(text)
        if not isinstance(message, dict):
            raise McpError(f"the MCP server sent no answer to {method}")
        if "error" in message:
            error = message["error"] or {}
            raise McpError(f"the MCP server refused {method}: {error.get('message', error)}")
        result = message.get("result")
        if not isinstance(result, dict):
            raise McpError(f"the MCP server's answer to {method} has no result")
        return result, session_id

    async def list_tools(self) -> list[JSON]:
        result = await self._exchange("tools/list", {})
        return [t for t in result.get("tools") or [] if isinstance(t, dict)]

    async def call_tool(self, name: str, arguments: JSON) -> str:
        """The tool's text output; McpError when the tool reports an error."""
        result = await self._exchange("tools/call", {"name": name, "arguments": arguments})
        texts = [
            str(part.get("text", ""))
            for part in result.get("content") or []
            if isinstance(part, dict) and part.get("type") == "text"
        ]
        output = "\n".join(texts)
        if not texts and result.get("structuredContent") is not None:
            output = json.dumps(result["structuredContent"])
        if result.get("isError"):
            raise McpError(output or f"the tool {name} failed")
        return output


def listed_tool(tool: JSON) -> JSON:
    """An MCP tool as a `mcp_list_tools` item lists it."""
    listed: JSON = {"name": str(tool.get("name")), "input_schema": tool.get("inputSchema") or {}}
    if tool.get("description"):
        listed["description"] = tool["description"]
    if tool.get("annotations"):
        listed["annotations"] = tool["annotations"]
    return listed


def allowed(server: JSON, name: str) -> bool:
    rule = server.get("allowed_tools")
    if rule is None:
        return True
    if isinstance(rule, list):
        return name in rule
    names = rule.get("tool_names") if isinstance(rule, dict) else None
    return names is None or name in names


def needs_approval(server: JSON, name: str) -> bool:
    rule = server.get("require_approval", "always")
    if rule in ("always", None):
        return True
    if rule == "never":
        return False
    never = (rule.get("never") or {}).get("tool_names") or [] if isinstance(rule, dict) else []
    return name not in never
