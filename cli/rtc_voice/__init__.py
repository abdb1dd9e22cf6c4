"""rtc-voice: a terminal voice client for the OpenAI Realtime API over WebRTC."""

__version__ = "0.1.0"
