"""The offline local Realtime server: a protocol-faithful stand-in for the OpenAI API."""

from rtc_voice.localserver.server import DEFAULT_PORT, LocalServer

__all__ = ["DEFAULT_PORT", "LocalServer"]
