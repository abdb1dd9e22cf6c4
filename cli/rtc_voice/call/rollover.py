"""Pure: when to move a conversation to a new session before the server's cap ends it.

OpenAI ends a Realtime session after 60 minutes. `session.created` carries `expires_at` (Unix
seconds); when it is absent the cap is assumed 60 minutes after the call opened. Within the
last `lead` seconds, at a quiet moment (nobody speaking, no reply running, no transcript
awaited), the call opens the next session in the background, replays the conversation into
it, and switches the microphone and speaker over.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rtc_voice.protocol.defaults import SESSION_CAP_SECONDS


def session_deadline(session: Mapping[str, Any] | None, wall_now: float, now: float) -> float:
    """The session's end in the caller's monotonic time (`now`), from `expires_at` (wall clock,
    `wall_now`) when the server gave one, else `SESSION_CAP_SECONDS` from now."""
    expires = (session or {}).get("expires_at")
    if isinstance(expires, int | float) and not isinstance(expires, bool) and expires > 0:
        return now + (float(expires) - wall_now)
    return now + SESSION_CAP_SECONDS


def rollover_start(deadline: float, lead: float, opened: float) -> float:
    """When to start looking for a quiet moment: `lead` seconds before the end, but not in
    the first half of the session (a session shorter than twice the lead would otherwise roll
    over again the moment it opens)."""
    return max(opened + (deadline - opened) / 2, deadline - lead)


def quiet(*, speaking: str, reply_running: bool, awaiting_transcripts: bool) -> bool:
    """Nobody is speaking, no reply is running, no transcript is on its way."""
    return speaking == "listening" and not reply_running and not awaiting_transcripts
