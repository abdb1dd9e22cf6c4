"""The built-in tools: `get_time`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rtc_voice.tools import Tool


def local_time(now: Callable[[], datetime] | None = None) -> str:
    current = (now or (lambda: datetime.now(UTC).astimezone()))()
    return json.dumps(
        {"local_time": current.isoformat(timespec="seconds"), "timezone": current.tzname()}
    )


def get_time(now: Callable[[], datetime] | None = None) -> Tool:
    from rtc_voice.tools import Tool

    async def run(arguments: Mapping[str, Any]) -> str:
        return local_time(now)

    return Tool(
        name="get_time",
        description="The current local date and time of the user, with the time zone.",
        run=run,
        timeout=2.0,
    )
