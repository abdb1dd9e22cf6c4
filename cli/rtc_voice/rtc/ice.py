"""ICE configuration: which servers a peer may contact, and when a call stays on loopback."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiortc import RTCConfiguration, RTCIceServer


def rtc_configuration(ice_servers: Sequence[str]) -> RTCConfiguration:
    """aiortc contacts a public STUN server unless given an explicit (here: empty) list."""
    return RTCConfiguration(iceServers=[RTCIceServer(urls=url) for url in ice_servers])


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: traffic to it never leaves this machine."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def loopback_only(host: str, ice_servers: Sequence[str]) -> bool:
    """A call to `host` with these ICE servers never needs a non-loopback candidate."""
    return not ice_servers and is_loopback_host(host)
