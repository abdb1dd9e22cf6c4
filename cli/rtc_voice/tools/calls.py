"""One model's function calls carried out: approval first, then the tool, timed; the user's
interrupt cancels what is running. Each call ends as a `ToolRecord` (what the transcript keeps
and a reconnect can replay: call id, name, arguments, output)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rtc_voice.tools import ToolRegistry, error_output
from rtc_voice.tools.approval import NOT_NEEDED, Approvals, Decision, declined_message


@dataclass(frozen=True)
class ToolRecord:
    call_id: str
    name: str
    arguments: str
    output: str
    duration_s: float  # running time of the tool itself (0 when it did not run)
    approved_by: str  # "not needed", "you", "--yes"; or why it was declined
    ran: bool = True
    interrupted: bool = False


class ToolCalls:
    def __init__(
        self,
        registry: ToolRegistry,
        approvals: Approvals,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.approvals = approvals
        self.clock = clock
        self._running: set[asyncio.Task[object]] = set()
        self._interrupted: set[asyncio.Task[object]] = set()

    async def run_all(self, calls: Iterable[tuple[str, str, str]]) -> list[ToolRecord]:
        """Run (call_id, name, arguments) calls concurrently; records in the same order."""
        return list(await asyncio.gather(*(self.run(*call) for call in calls)))

    async def run(self, call_id: str, name: str, arguments: str) -> ToolRecord:
        tool = self.registry.get(name)
        decision = NOT_NEEDED
        if tool is not None and tool.approval == "ask":
            decision = await self.approvals.decide(call_id, name, arguments)
        if not decision.approved:
            return ToolRecord(
                call_id,
                name,
                arguments,
                error_output(declined_message(name, decision)),
                0.0,
                decision.by,
                ran=False,
                interrupted=decision.by == "interrupted",
            )
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        started = self.clock()
        try:
            output = await self.registry.run(name, arguments)
            interrupted = False
        except asyncio.CancelledError:
            if task not in self._interrupted:
                raise  # the call is ending
            task.uncancel()
            output = error_output(f"the tool {name} was cancelled: the user interrupted")
            interrupted = True
        finally:
            self._running.discard(task)
            self._interrupted.discard(task)
        return ToolRecord(
            call_id,
            name,
            arguments,
            output,
            self.clock() - started,
            decision.by,
            interrupted=interrupted,
        )

    @property
    def busy(self) -> bool:
        """A call is running or waiting for approval."""
        return bool(self._running) or self.approvals.pending() is not None

    def interrupt(self) -> None:
        """The user interrupted: decline what waits for approval, cancel what runs."""
        self.approvals.decline_all(Decision(False, "interrupted").by)
        for task in self._running:
            self._interrupted.add(task)
            task.cancel()
