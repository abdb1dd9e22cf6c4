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


def plan_reply(items: list[JSON], tools: list[JSON], speech_ms: dict[str, int]) -> ReplyPlan:
    """Pure: what the local 'model' answers to the conversation so far."""
    for item in reversed(items):
        kind, role = item.get("type"), item.get("role")
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
            seconds = speech_ms[item["id"]] / 1000
            return ReplyPlan(f"I heard about {seconds:.1f} seconds of speech.")
        text = " ".join(str(c.get("text", "")) for c in content if c.get("type") == "input_text")
        match = re.match(r"^/call\s+(\S+)\s*(.*)$", text.strip(), re.S)
        if match:
            name, args = match.group(1), match.group(2).strip() or "{}"
            names = [t.get("name") for t in tools]
            if name not in names:
                return ReplyPlan(f"There is no tool named {name}.")
            try:
                json.loads(args)
            except json.JSONDecodeError:
                return ReplyPlan(f"The arguments for {name} are not valid JSON.")
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
