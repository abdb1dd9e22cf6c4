"""The offline local Realtime server: a protocol-faithful stand-in for the OpenAI API.

`LocalServer` is loaded on first use, so the package's pure modules (`netem`, which `talk`
reads to check --network) do not bring in aiohttp and aiortc with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rtc_voice.localserver.server import DEFAULT_PORT, LocalServer

__all__ = ["DEFAULT_PORT", "LocalServer"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from rtc_voice.localserver import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
