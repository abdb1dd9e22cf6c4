"""Asking the user before a tool runs: pending approvals as data, answered by y / n.

A call that needs approval waits here until the user answers (the presenter sends `Approve` or
`Decline`), the approval timeout passes (declined), or the user interrupts (declined). Without a
terminal the policy decides at once: `--yes` approves, otherwise the call is declined.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Policy = Literal["ask", "yes", "no"]  # ask on screen; --yes; no terminal to ask on


@dataclass(frozen=True)
class PendingApproval:
    """What the screen shows while a call waits for y / n."""

    id: str  # the function call's call_id, or the MCP approval request's item id
    name: str
    arguments: str  # pretty JSON (or the raw text when it is not JSON)
    server: str | None = None  # the MCP server's label, for MCP calls
    deadline: float = 0.0  # monotonic time at which no answer declines it

    def left_s(self, now: float) -> float:
        return max(0.0, self.deadline - now)


@dataclass(frozen=True)
class Decision:
    approved: bool
    by: str  # who decided: "not needed", "you", "--yes", "timeout", "no terminal", ...


NOT_NEEDED = Decision(True, "not needed")


def pretty_arguments(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments or "{}"), ensure_ascii=False, indent=None)
    except ValueError:
        return arguments


class Approvals:
    def __init__(
        self,
        policy: Policy,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.timeout = timeout
        self.clock = clock
        self._pending: dict[str, tuple[PendingApproval, asyncio.Future[Decision]]] = {}

    def pending(self) -> PendingApproval | None:
        """The oldest call waiting for an answer (the one y / n answers)."""
        for request, _ in self._pending.values():
            return request
        return None

    async def decide(
        self, id: str, name: str, arguments: str, server: str | None = None
    ) -> Decision:
        if self.policy == "yes":
            return Decision(True, "--yes")
        if self.policy == "no":
            return Decision(False, "no terminal")
        request = PendingApproval(
            id, name, pretty_arguments(arguments), server, self.clock() + self.timeout
        )
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._pending[id] = (request, future)
        try:
            async with asyncio.timeout(self.timeout):
                return await future
        except TimeoutError:
            return Decision(False, "timeout")
        finally:
            self._pending.pop(id, None)

    def answer(self, id: str, approved: bool, by: str = "you") -> bool:
        """Answer a pending call; False when it is no longer waiting."""
        entry = self._pending.get(id)
        if entry is None or entry[1].done():
            return False
        entry[1].set_result(Decision(approved, by))
        return True

    def decline_all(self, by: str) -> None:
        for id in list(self._pending):
            self.answer(id, False, by)


def declined_message(name: str, decision: Decision) -> str:
    """What the model is told when a call did not run."""
    reason = {
        "you": "the user declined it",
        "timeout": "the user did not approve it in time",
        "no terminal": "it needs the user's approval and there is no terminal to ask on "
        "(the user can allow it with --yes)",
        "interrupted": "the user interrupted",
    }.get(decision.by, f"it was declined ({decision.by})")
    return f"the tool {name} was not run: {reason}"
