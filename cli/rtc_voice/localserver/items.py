"""Pure: the conversation's items on the local server: placing one after its predecessor,
finding one, and checking a client's `conversation.item.create` as OpenAI does."""

from __future__ import annotations

import copy

from rtc_voice.localserver.sessions import JSON, ParamError, invalid, new_id, unknown

ITEM_KEYS = {
    "id",
    "object",
    "type",
    "status",
    "role",
    "content",
    "call_id",
    "name",
    "arguments",
    "output",
}


def insert(items: list[JSON], item: JSON, previous: str | None) -> str | None:
    """Put `item` after `previous` (None: at the end; "root": first); returns the id it follows."""
    if previous is None or previous == "root":
        index = 0 if previous == "root" else len(items)
    else:
        index = next(i for i, it in enumerate(items) if it["id"] == previous) + 1
    previous_id = items[index - 1]["id"] if index > 0 else None
    items.insert(index, item)
    return str(previous_id) if previous_id is not None else None


def find(items: list[JSON], item_id: object) -> JSON | None:
    return next((item for item in items if item["id"] == item_id), None)


def last_id(items: list[JSON]) -> str | None:
    return str(items[-1]["id"]) if items else None


def from_create_event(event: JSON) -> JSON:
    """The item a `conversation.item.create` adds (a copy, with id, object and status set);
    raises ParamError for what OpenAI refuses."""
    for key in event:
        if key not in ("type", "event_id", "item", "previous_item_id"):
            raise unknown(key)
    item = copy.deepcopy(event.get("item"))
    if not isinstance(item, dict):
        raise ParamError(
            "missing_required_parameter", "item", "Missing required parameter: 'item'."
        )
    for key in item:
        if key not in ITEM_KEYS:
            raise unknown(f"item.{key}")
    kind = item.get("type")
    if kind == "message":
        if item.get("role") not in ("user", "assistant", "system"):
            raise invalid("item.role", item.get("role"), "'user', 'assistant' or 'system'")
        if not isinstance(item.get("content"), list):
            raise invalid("item.content", item.get("content"), "a list of content parts")
    elif kind == "function_call_output":
        if not item.get("call_id"):
            raise ParamError(
                "missing_required_parameter",
                "item.call_id",
                "Missing required parameter: 'item.call_id'.",
            )
        item.setdefault("output", "")
    elif kind != "function_call":
        raise invalid("item.type", kind, "'message', 'function_call' or 'function_call_output'")
    item.setdefault("id", new_id("item"))
    item.update(object="realtime.item", status="completed")
    return item
