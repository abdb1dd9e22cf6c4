"""The protocol's allowed values and defaults, as OpenAI documents them (one copy for the client's
settings and for the local server's sessions)."""

from __future__ import annotations

from typing import Any

DEFAULT_MODEL = "gpt-realtime"
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
SERVER_DEFAULT_VOICE = "alloy"  # what a session has when the client names none
TURN_DETECTION_TYPES = ("server_vad", "semantic_vad")
EAGERNESS = ("low", "medium", "high", "auto")
NOISE_REDUCTION_TYPES = ("near_field", "far_field")
OUTPUT_MODALITIES = ("audio", "text")
TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"
AUDIO_FORMAT = {"type": "audio/pcm", "rate": 24000}

# server_vad parameters and their defaults
VAD_THRESHOLD = 0.5
VAD_PREFIX_PADDING_MS = 300
VAD_SILENCE_DURATION_MS = 500

# ephemeral keys (client secrets)
KEY_TTL_DEFAULT = 600
KEY_TTL_MIN = 10
KEY_TTL_MAX = 7200

SESSION_CAP_SECONDS = 3600.0  # OpenAI ends every Realtime session after 60 minutes
SESSION_CAP_CODE = "session_expired"


def turn_detection_defaults(kind: str) -> dict[str, Any]:
    """The full turn-detection object a server reports for `kind`, before client overrides."""
    if kind == "semantic_vad":
        return {
            "type": "semantic_vad",
            "eagerness": "auto",
            "create_response": True,
            "interrupt_response": True,
        }
    return {
        "type": "server_vad",
        "threshold": VAD_THRESHOLD,
        "prefix_padding_ms": VAD_PREFIX_PADDING_MS,
        "silence_duration_ms": VAD_SILENCE_DURATION_MS,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }
