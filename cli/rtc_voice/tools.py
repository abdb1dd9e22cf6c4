"""Pure: the function tools `talk` offers the model, and running them."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

GET_TIME: dict[str, Any] = {
    "type": "function",
    "name": "get_time",
    "description": "The current local date and time of the user, with the time zone.",
    "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
}
TOOLS = [GET_TIME]


def run_tool(name: str, arguments: str, now: Callable[[], datetime] | None = None) -> str:
    """The tool's output as a JSON string (errors too, so the model can say what went wrong)."""
    try:
        args = json.loads(arguments or "{}")
        if not isinstance(args, dict):
            raise ValueError("arguments must be a JSON object")
    except ValueError as exc:
        return json.dumps({"error": f"invalid arguments: {exc}"})
    if name == "get_time":
        current = (now or (lambda: datetime.now(UTC).astimezone()))()
        return json.dumps(
            {"local_time": current.isoformat(timespec="seconds"), "timezone": current.tzname()}
        )
    return json.dumps({"error": f"unknown tool {name!r}"})
