"""Keeps every test on this machine: a socket-level guard against leaving 127.0.0.0/8.

`socket.socket.connect`, `connect_ex` and `sendto` are wrapped; asyncio's stream
(`sock_connect`) and datagram (`sendto`, `remote_addr`) paths, httpx, aiohttp and aioice all go
through them. A connection to anything but loopback (or a Unix socket) raises
`OSError(ENETUNREACH)` before a packet is sent, and is recorded so the test fails even when the
code under test swallowed the error. Host names other than `localhost` are not resolved
(`getaddrinfo` answers EAI_NONAME), so no DNS query leaves either; asking for one fails the
test, except names under `.invalid` (RFC 6761: never resolvable), which tests use on purpose
for the "unknown host" path.

`tests/conftest.py` installs it around every test; `tests/netguard_site/sitecustomize.py`
(on PYTHONPATH for the run) installs it in every Python subprocess the tests start, such as the
CLI under test, which report what they refused in a log file the test then checks.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys
from collections.abc import Callable
from typing import Any

LOG_ENV = "RTCV_TEST_NETGUARD_LOG"  # children append what they refused to this file


def is_local(address: Any) -> bool:
    """Loopback IPv4/IPv6, `localhost`, or a Unix socket path."""
    if isinstance(address, str | bytes):  # AF_UNIX
        return True
    if not isinstance(address, tuple) or not address:
        return False
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return False
    host = host.strip("[]").split("%", 1)[0]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NetGuard:
    """Installs the wrappers (`install`/`uninstall`) and keeps the refused destinations."""

    def __init__(self, log_path: str | None = None) -> None:
        self.violations: list[str] = []
        self.log_path = log_path
        self._saved: dict[str, Any] = {}

    def _refuse(self, what: str, address: Any) -> OSError:
        self.violations.append(f"{what} {address!r}")
        if self.log_path:
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write(f"{' '.join(sys.argv)}: {what} {address!r}\n")
        return OSError(
            errno.ENETUNREACH, f"tests may not leave 127.0.0.0/8 ({what} {address!r} refused)"
        )

    def install(self) -> None:
        if self._saved:
            return
        cls = socket.socket
        self._saved = {
            "connect": cls.connect,
            "connect_ex": cls.connect_ex,
            "sendto": cls.sendto,
            "getaddrinfo": socket.getaddrinfo,
        }
        guard = self
        connect: Callable[..., Any] = self._saved["connect"]
        connect_ex: Callable[..., Any] = self._saved["connect_ex"]
        sendto: Callable[..., Any] = self._saved["sendto"]
        getaddrinfo: Callable[..., Any] = self._saved["getaddrinfo"]

        def guarded_connect(self: socket.socket, address: Any) -> Any:
            if not is_local(address):
                raise guard._refuse("connect", address)
            return connect(self, address)

        def guarded_connect_ex(self: socket.socket, address: Any) -> Any:
            if not is_local(address):
                guard._refuse("connect_ex", address)
                return errno.ENETUNREACH
            return connect_ex(self, address)

        def guarded_sendto(self: socket.socket, data: Any, *args: Any) -> Any:
            address = args[-1]
            if not is_local(address):
                raise guard._refuse("sendto", address)
            return sendto(self, data, *args)

        def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else host
            if name is not None and not is_local((name, 0)):
                try:
                    ipaddress.ip_address(str(name).strip("[]"))
                except ValueError:  # a name that would need DNS: refuse without a query
                    if not str(name).lower().rstrip(".").endswith(".invalid"):
                        guard._refuse("getaddrinfo", name)
                    raise socket.gaierror(
                        socket.EAI_NONAME, f"tests resolve no names ({name})"
                    ) from None
            return getaddrinfo(host, *args, **kwargs)

        cls.connect = guarded_connect  # type: ignore[method-assign]
        cls.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
        cls.sendto = guarded_sendto  # type: ignore[assignment]
        socket.getaddrinfo = guarded_getaddrinfo

    def uninstall(self) -> None:
        if not self._saved:
            return
        cls = socket.socket
        cls.connect = self._saved["connect"]  # type: ignore[method-assign]
        cls.connect_ex = self._saved["connect_ex"]  # type: ignore[method-assign]
        cls.sendto = self._saved["sendto"]
        socket.getaddrinfo = self._saved["getaddrinfo"]
        self._saved = {}


def install_in_child() -> None:
    """For sitecustomize: guard this whole process when the tests asked for it; every refused
    destination is appended to the file named by RTCV_TEST_NETGUARD_LOG at once (a child
    may leave through os._exit), and the test that started the child fails on it."""
    import os

    log_path = os.environ.get(LOG_ENV)
    if log_path:
        NetGuard(log_path).install()
