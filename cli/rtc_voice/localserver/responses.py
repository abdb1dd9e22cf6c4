"""Pure: what the local 'model' answers (a plan per response) and the usage it reports, and
the state of one response while it runs."""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import dataclass, field

from rtc_voice.localserver.sessions import JSON

AUDIO_TOKENS_IN_PER_S = 10
AUDIO_TOKENS_OUT_PER_S = 20


@dataclass
class ReplyPlan:
    text: str = ""
    function: tuple[str, str] | None = None  # (name, arguments JSON)
    mcp: tuple[str, str, str] | None = None  # (server label, tool name, arguments JSON)
    approval_request_id: str | None = None  # the approved request an MCP call answers
    ask_first: bool = False  # an MCP call that needs the user's approval first


def heard(speech_ms: int, audio_ms: int | None) -> tuple[str, str]:
    """Pure: what the local 'model' says it heard in a spoken turn, and the transcript it gives
    that turn: the voiced length, or, when nothing was voiced (a push-to-talk turn held over
    silence), the length of the silence rather than "0.0 seconds of speech"."""
    speech = round(speech_ms / 1000, 1)
    if speech > 0:
        return f"I heard about {speech:.1f} seconds of speech.", f"[speech {speech:.1f} s]"
    if audio_ms:
        silence = audio_ms / 1000
        return (
            f"I heard no speech, only {silence:.1f} seconds of silence.",
            f"[silence {silence:.1f} s]",
        )
    return "I heard no speech.", "[no speech]"


def plan_reply(
    items: list[JSON],
    tools: list[JSON],
    speech_ms: dict[str, int],
    mcp_tools: dict[str, tuple[str, bool]] | None = None,
    audio_ms: dict[str, int] | None = None,
) -> ReplyPlan:
    """Pure: what the local 'model' answers to the conversation so far. `speech_ms` holds each
    spoken turn's voiced length, `audio_ms` its whole length. `mcp_tools` maps an MCP tool's
    name (and `label.name`) to its server label and whether it needs approval."""
    mcp_tools = mcp_tools or {}
    audio_ms = audio_ms or {}
    for item in reversed(items):
        kind, role = item.get("type"), item.get("role")
        if kind == "mcp_call":
            error = item.get("error") or {}
            said = item.get("output") if not error else json.dumps({"error": error.get("message")})
            return ReplyPlan(f"The tool {item.get('name')} returned: {said}")
        if kind == "mcp_approval_response":
            request = next(
                (i for i in items if i.get("id") == item.get("approval_request_id")), None
            )
            if request is None:
                return ReplyPlan("I cannot find the tool call you answered.")
            if not item.get("approve"):
                return ReplyPlan(f"You declined the call to {request.get('name')}.")
            return ReplyPlan(
                mcp=(str(request["server_label"]), str(request["name"]), request["arguments"]),
                approval_request_id=str(request["id"]),
            )
        if kind == "function_call_output":
            name = next(
                (
                    i.get("name")
                    for i in items
                    if i.get("call_id") == item.get("call_id") and i.get("type") == "function_call"
                ),
                "the tool",
            )
            return ReplyPlan(f"The tool {name} returned: {item.get('output', '')}")
        if kind != "message" or role != "user":
            continue
        content = item.get("content") or [{}]
        if item["id"] in speech_ms:
            return ReplyPlan(heard(speech_ms[item["id"]], audio_ms.get(item["id"]))[0])
        text = " ".join(str(c.get("text", "")) for c in content if c.get("type") == "input_text")
        match = re.match(r"^/call\s+(\S+)\s*(.*)$", text.strip(), re.S)
        if match:
            name, args = match.group(1), match.group(2).strip() or "{}"
            names = [t.get("name") for t in tools if t.get("type") == "function"]
            if name not in names and name not in mcp_tools:
                return ReplyPlan(f"There is no tool named {name}.")
            try:
                json.loads(args)
            except json.JSONDecodeError:
                return ReplyPlan(f"The arguments for {name} are not valid JSON.")
            if name in mcp_tools:
                label, ask = mcp_tools[name]
                return ReplyPlan(mcp=(label, name.split(".")[-1], args), ask_first=ask)
            return ReplyPlan(function=(name, args))
        snippet = text.strip()[:300] or "nothing"
        return ReplyPlan(f"You said: {snippet}")
    return ReplyPlan("Hello. This is the rtc-voice local server. Speak, or type a message.")


def usage_for(
    items: list[JSON],
    instructions: str,
    speech_ms: dict[str, int],
    out_text: str,
    out_audio_ms: float,
    cached: int,
) -> JSON:
    """Pure: token usage derived from text and audio lengths (4 chars/token, 10 or 20 tok/s)."""
    text_chars = len(instructions)
    audio_in = 0
    for item in items:
        if item["id"] in speech_ms:
            audio_in += math.ceil(speech_ms[item["id"]] / 1000 * AUDIO_TOKENS_IN_PER_S)
        for part in item.get("content") or []:
            text_chars += len(str(part.get("text") or part.get("transcript") or ""))
        text_chars += len(str(item.get("arguments") or item.get("output") or ""))
    text_in = math.ceil(text_chars / 4)
    total_in = text_in + audio_in
    cached = min(cached, total_in)
    cached_text = min(cached, text_in)
    out_text_tokens = math.ceil(len(out_text) / 4)
    out_audio_tokens = math.ceil(out_audio_ms / 1000 * AUDIO_TOKENS_OUT_PER_S)
    total_out = out_text_tokens + out_audio_tokens
    return {
        "total_tokens": total_in + total_out,
        "input_tokens": total_in,
        "output_tokens": total_out,
        "input_token_details": {
            "text_tokens": text_in,
            "audio_tokens": audio_in,
            "image_tokens": 0,
            "cached_tokens": cached,
            "cached_tokens_details": {
                "text_tokens": cached_text,
                "audio_tokens": cached - cached_text,
                "image_tokens": 0,
            },
        },
        "output_token_details": {"text_tokens": out_text_tokens, "audio_tokens": out_audio_tokens},
    }


@dataclass
class Response:
    id: str
    modalities: list[str]
    task: asyncio.Task[None] | None = None
    item: JSON | None = None
    previous_item_id: str | None = None
    spoken: str = ""
    audio_started: bool = False
    drained: asyncio.Event = field(default_factory=asyncio.Event)
