"""One copy of the OpenAI Realtime protocol (GA) for the client and the local server: event
names (`names`), allowed values and defaults (`defaults`), client-event builders (`client`) and
server events parsed into a tagged union (`server`). Pure: no I/O, no third-party imports."""

from rtc_voice.protocol.names import EVENTS_CHANNEL, ClientEventType, ServerEventType

__all__ = ["EVENTS_CHANNEL", "ClientEventType", "ServerEventType"]
