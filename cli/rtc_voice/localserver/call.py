"""One local call: the client events it accepts and the server events it sends, in OpenAI's GA
order (see shared protocol notes): turns from the input buffer, items, paced responses.

The parts live next door: `answerer.py` (the aiortc peer), `input_buffer.py` (audio and VAD),
`items.py`, `responses.py` (what to answer, usage), `voice.py` (reply audio). It never pretends to
understand speech: a spoken turn is answered with how long it was, a typed one is echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from rtc_voice.audio.pcm import RATE, rms_dbfs
from rtc_voice.audio.tracks import PcmTrack, receive_pcm
from rtc_voice.localserver import items as store
from rtc_voice.localserver.answerer import Answerer
from rtc_voice.localserver.input_buffer import InputBuffer
from rtc_voice.localserver.netem import Impairment, PacketFate
from rtc_voice.localserver.responses import ReplyPlan, Response, heard, plan_reply, usage_for
from rtc_voice.localserver.sessions import (
    JSON,
    ParamError,
    merge_session,
    new_id,
    validate_session,
)
from rtc_voice.localserver.vad import SpeechStarted, SpeechStopped
from rtc_voice.localserver.voice import synthesize
from rtc_voice.protocol import ClientEventType as C
from rtc_voice.protocol import ServerEventType as S

TRANSCRIPTION_DELAY = 0.25  # seconds: user transcripts arrive late, as they do from OpenAI
MCP_LIST_WAIT_S = 20.0  # longest a response waits for a session's MCP servers to be listed


@dataclass
class CallStats:
    max_late_ms: float = 0.0  # worst reply-audio frame lateness (bench_localserver reports it)


class LocalCall:
    """One WebRTC call against the local server."""

    def __init__(
        self,
        call_id: str,
        session: JSON,
        *,
        max_duration: float,
        log: Callable[[str], None],
        on_end: Callable[[LocalCall], None],
        loopback_only: bool = False,
        network: Impairment | None = None,
        drop_after: float | None = None,
    ) -> None:
        self.call_id = call_id
        self.session = session
        self.log = log
        self.stats = CallStats()
        self.items: list[JSON] = []
        # MCP servers listed for this session: label -> (its tool entry, the tools it listed)
        self.mcp_servers: dict[str, tuple[JSON, list[str]]] = {}
        self._mcp_listing: set[asyncio.Task[None]] = set()
        self.speech_ms: dict[str, int] = {}  # per spoken item: voiced audio
        self.audio_ms: dict[str, int] = {}  # per spoken item: all its audio, silence included
        self.conversation_id = new_id("conv")
        self.response: Response | None = None
        self.last_response_id: str | None = None  # output_audio_buffer.cleared names one
        self.track = PcmTrack(on_drained=self._on_drained)
        self.cleared_by_cancel = False  # a cancel already cleared the audio of this reply
        self.peer = Answerer(
            self.track,
            on_open=self._on_open,
            on_message=self._on_message,
            on_audio=self._on_audio_track,
            on_ended=self.close,
            loopback_only=loopback_only,
        )
        self.started = time.monotonic()
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_end = on_end
        self._closed = False
        self._last_input_tokens = 0
        self.input = InputBuffer(self._detection())
        self._handlers: dict[str, Callable[[JSON], None]] = {
            C.SESSION_UPDATE: self._on_session_update,
            C.INPUT_AUDIO_BUFFER_APPEND: self._on_input_audio_buffer_append,
            C.INPUT_AUDIO_BUFFER_COMMIT: self._on_input_audio_buffer_commit,
            C.INPUT_AUDIO_BUFFER_CLEAR: self._on_input_audio_buffer_clear,
            C.OUTPUT_AUDIO_BUFFER_CLEAR: self._on_output_audio_buffer_clear,
            C.CONVERSATION_ITEM_CREATE: self._on_conversation_item_create,
            C.CONVERSATION_ITEM_RETRIEVE: self._on_conversation_item_retrieve,
            C.CONVERSATION_ITEM_TRUNCATE: self._on_conversation_item_truncate,
            C.CONVERSATION_ITEM_DELETE: self._on_conversation_item_delete,
            C.RESPONSE_CREATE: self._on_response_create,
            C.RESPONSE_CANCEL: self._on_response_cancel,
        }
        loop = asyncio.get_running_loop()
        self._cap = loop.call_later(max_duration, self._expire, max_duration)
        self.network = network
        self.fate: PacketFate | None = None
        self._drop_after = drop_after
        self._drop: asyncio.TimerHandle | None = None
        self.cut = False  # the network rehearsal went silent (--drop-after)
        self.cut_at: float | None = None  # monotonic, for benchmarks

    # --- set-up and tear-down

    async def answer(self, offer_sdp: str) -> str:
        answer = await self.peer.answer(offer_sdp)
        if self.network is not None and self.network.active:
            self.fate = PacketFate(self.network)
            self.peer.impair(self.fate)
        if self._drop_after is not None:
            self._drop = asyncio.get_running_loop().call_later(self._drop_after, self._cut)
        return answer

    def _cut(self) -> None:
        """--drop-after: the call goes silent, as when the network is lost; it ends itself
        when ICE consent expires (or when the server stops)."""
        self.cut = True
        self.cut_at = time.monotonic()
        self.peer.cut()
        self.log(f"{self.call_id} network cut (rehearsal): silent from now on")

    async def close(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self._cap.cancel()
        if self._drop is not None:
            self._drop.cancel()
        current = asyncio.current_task()
        others = [t for t in self._tasks if t is not current]  # close() may run in one of ours
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        self.track.stop()
        await self.peer.close()
        elapsed = time.monotonic() - self.started
        self.stats.max_late_ms = self.track.max_late_ms
        self.log(f"{self.call_id} ended after {elapsed:.1f} s ({reason})")
        self._on_end(self)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """A task's exception is a bug in the server: say so in its log, end the call."""
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        self.log(f"{self.call_id} internal error: {type(exc).__name__}: {exc}")
        if not self._closed:
            self._spawn(self.close("internal error"))

    def _expire(self, seconds: float) -> None:
        minutes = seconds / 60
        shown = f"{minutes:g} minutes" if minutes >= 1 else f"{seconds:g} seconds"
        self.emit(
            S.ERROR,
            error={
                "type": "invalid_request_error",
                "code": "session_expired",
                "message": f"Your session hit the maximum duration of {shown}.",
                "param": None,
                "event_id": None,
            },
        )
        self._spawn(self._close_soon("session cap reached"))

    async def _close_soon(self, reason: str) -> None:
        await asyncio.sleep(0.2)
        await self.close(reason)

    # --- outgoing events

    def emit(self, type_: str, **fields: Any) -> None:
        if self.cut:
            return
        self.peer.send(json.dumps({"type": type_, "event_id": new_id("event"), **fields}))

    def _on_open(self) -> None:
        self.emit(S.SESSION_CREATED, session=self.session)  # first, before anything queued

    def _error(self, error: ParamError, event_id: str | None) -> None:
        self.emit(S.ERROR, error=error.as_error(event_id))

    # --- incoming audio and turn detection

    def _detection(self) -> dict[str, Any] | None:
        detection = self.session["audio"]["input"].get("turn_detection")
        return detection if isinstance(detection, dict) else None

    def _on_audio_track(self, track: Any) -> None:
        self._spawn(self._consume(track))

    async def _consume(self, track: Any) -> None:
        await receive_pcm(track, lambda pcm: self._on_audio(rms_dbfs(pcm), len(pcm) * 1000 // RATE))

    def _on_audio(self, level: float, frame_ms: int) -> None:
        detection = self.input.detection or {}
        for event in self.input.feed(level, frame_ms):
            if isinstance(event, SpeechStarted):
                self.input.pending_item_id = new_id("item")
                self.emit(
                    S.INPUT_AUDIO_BUFFER_SPEECH_STARTED,
                    audio_start_ms=event.audio_start_ms,
                    item_id=self.input.pending_item_id,
                )
                if self.response is not None and detection.get("interrupt_response", True):
                    self.cancel_response("turn_detected")
            elif isinstance(event, SpeechStopped):
                item_id = self.input.pending_item_id or new_id("item")
                self.emit(
                    S.INPUT_AUDIO_BUFFER_SPEECH_STOPPED,
                    audio_end_ms=event.audio_end_ms,
                    item_id=item_id,
                )
                self._commit(item_id, event.speech_ms, auto_respond=True)

    def _commit(self, item_id: str, speech_ms: int, *, auto_respond: bool) -> None:
        self.audio_ms[item_id] = self.input.ms
        self.input.committed()
        previous = store.last_id(self.items)
        self.emit(S.INPUT_AUDIO_BUFFER_COMMITTED, item_id=item_id, previous_item_id=previous)
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self.speech_ms[item_id] = speech_ms
        self._add_item(item, previous)
        if self.session["audio"]["input"].get("transcription"):
            self._spawn(self._transcribe(item, speech_ms))
        detection = self.session["audio"]["input"].get("turn_detection") or {}
        if auto_respond and detection.get("create_response", True) and self.response is None:
            self.start_response({})

    async def _transcribe(self, item: JSON, speech_ms: int) -> None:
        await asyncio.sleep(TRANSCRIPTION_DELAY)
        seconds = speech_ms / 1000
        transcript = heard(speech_ms, self.audio_ms.get(item["id"]))[1]
        ids = {"item_id": item["id"], "content_index": 0}
        self.emit(S.TRANSCRIPTION_DELTA, **ids, delta=transcript)
        item["content"][0]["transcript"] = transcript
        self.emit(
            S.TRANSCRIPTION_COMPLETED,
            **ids,
            transcript=transcript,
            usage={"type": "duration", "seconds": round(seconds, 3)},
        )

    # --- the conversation

    def _add_item(self, item: JSON, previous: str | None) -> None:
        previous_id = store.insert(self.items, item, previous)
        self.emit(S.CONVERSATION_ITEM_ADDED, item=item, previous_item_id=previous_id)
        self.emit(S.CONVERSATION_ITEM_DONE, item=item, previous_item_id=previous_id)

    def _find(self, item_id: object, event_id: str | None, param: str = "item_id") -> JSON | None:
        item = store.find(self.items, item_id)
        if item is not None:
            return item
        self._error(
            ParamError("item_not_found", param, f"Item with item_id not found: {item_id}"),
            event_id,
        )
        return None

    # --- incoming events

    def _on_message(self, message: str | bytes) -> None:
        try:
            event = json.loads(message)
            if not isinstance(event, dict):
                raise ValueError
        except (ValueError, UnicodeDecodeError):
            self._error(
                ParamError(
                    "invalid_json",
                    None,
                    "The server could not parse the event: it is not a JSON object.",
                ),
                None,
            )
            return
        event_id = event.get("event_id")
        kind = event.get("type")
        handler = self._handlers.get(str(kind))
        if handler is None:
            self._error(
                ParamError(
                    "invalid_value",
                    "type",
                    f"Invalid value: '{kind}'. Supported values are: "
                    + ", ".join(f"'{t}'" for t in C)
                    + ".",
                ),
                event_id,
            )
            return
        try:
            handler(event)
        except ParamError as error:
            self._error(error, event_id)

    def _on_session_update(self, event: JSON) -> None:
        session = validate_session(event.get("session"))
        self.session = merge_session(self.session, session)
        self.input.configure(self._detection())
        self.emit(S.SESSION_UPDATED, session=self.session)
        self._list_mcp_tools()

    def _on_input_audio_buffer_append(self, event: JSON) -> None:
        """Audio arrives on the RTP track over WebRTC; appended base64 is accepted and ignored."""

    def _on_input_audio_buffer_commit(self, event: JSON) -> None:
        if self.input.ms < 100:
            raise ParamError(
                "input_audio_buffer_commit_empty",
                None,
                "Error committing input audio buffer: buffer too small. Expected at least 100ms "
                f"of audio, but buffer only has {self.input.ms:.2f}ms of audio.",
            )
        item_id = self.input.pending_item_id or new_id("item")
        self._commit(item_id, self.input.voiced_ms, auto_respond=False)

    def _on_input_audio_buffer_clear(self, event: JSON) -> None:
        self.input.clear()
        self.emit(S.INPUT_AUDIO_BUFFER_CLEARED)

    def _on_output_audio_buffer_clear(self, event: JSON) -> None:
        if self.response is not None and self.response.audio_started:
            self.cancel_response("client_cancelled")
        elif not self.cleared_by_cancel:  # one `cleared` per interruption (cancel, then clear)
            self.track.clear()
            # response_id is required by the GA schema even with nothing playing: the last
            # response's, or a fresh id before there was any
            self.emit(
                S.OUTPUT_AUDIO_BUFFER_CLEARED,
                response_id=self.last_response_id or new_id("resp"),
            )

    def _on_conversation_item_create(self, event: JSON) -> None:
        item = store.from_create_event(event)
        previous = event.get("previous_item_id")
        if (
            previous not in (None, "root")
            and self._find(previous, event.get("event_id"), "previous_item_id") is None
        ):
            return
        self._add_item(item, previous)

    def _on_conversation_item_retrieve(self, event: JSON) -> None:
        item = self._find(event.get("item_id"), event.get("event_id"))
        if item is not None:
            self.emit(S.CONVERSATION_ITEM_RETRIEVED, item=item)

    def _on_conversation_item_truncate(self, event: JSON) -> None:
        item = self._find(event.get("item_id"), event.get("event_id"))
        if item is not None:
            self.emit(
                S.CONVERSATION_ITEM_TRUNCATED,
                item_id=item["id"],
                content_index=event.get("content_index", 0),
                audio_end_ms=event.get("audio_end_ms", 0),
            )

    def _on_conversation_item_delete(self, event: JSON) -> None:
        item = self._find(event.get("item_id"), event.get("event_id"))
        if item is not None:
            self.items.remove(item)
            self.emit(S.CONVERSATION_ITEM_DELETED, item_id=item["id"])

    def _on_response_create(self, event: JSON) -> None:
        if self.response is not None:
            raise ParamError(
                "conversation_already_has_active_response",
                None,
                f"Conversation already has an active response in progress: {self.response.id}. "
                "Wait until the response is finished before creating a new one.",
            )
        self.start_response(event.get("response") or {})

    def _on_response_cancel(self, event: JSON) -> None:
        if not self.cancel_response("client_cancelled"):
            raise ParamError(
                "response_cancel_not_active",
                None,
                "Cancellation failed: no active response found.",
            )

    # --- responses

    def start_response(self, options: JSON) -> None:
        modalities = options.get("output_modalities") or self.session["output_modalities"]
        response = Response(id=new_id("resp"), modalities=list(modalities))
        self.response = response
        self.last_response_id = response.id
        response.task = self._spawn(self._plan_and_run(response))

    async def _plan_and_run(self, response: Response) -> None:
        if self._mcp_listing:  # a response sees the MCP tools listed before it (bounded)
            await asyncio.wait(list(self._mcp_listing), timeout=MCP_LIST_WAIT_S)
        plan = plan_reply(
            self.items,
            self.session.get("tools") or [],
            self.speech_ms,
            self._mcp_names(),
            self.audio_ms,
        )
        await self._run_guarded(response, plan)

    def _response_object(self, response: Response, status: str, reason: str | None) -> JSON:
        output = [response.item] if response.item is not None else []
        obj: JSON = {
            "id": response.id,
            "object": "realtime.response",
            "status": status,
            "status_details": {"type": status, "reason": reason} if reason else None,
            "conversation_id": self.conversation_id,
            "output_modalities": response.modalities,
            "output": output,
            "audio": {
                "output": {
                    "voice": self.session["audio"]["output"]["voice"],
                    "format": self.session["audio"]["output"]["format"],
                }
            },
            "max_output_tokens": self.session.get("max_output_tokens", "inf"),
            "metadata": None,
            "usage": None,
        }
        if status != "in_progress":
            obj["usage"] = usage_for(
                [i for i in self.items if i is not response.item],
                self.session.get("instructions") or "",
                self.speech_ms,
                response.spoken,
                self.track.played_ms if response.audio_started else 0.0,
                self._last_input_tokens // 64 * 64,
            )
            self._last_input_tokens = obj["usage"]["input_tokens"]
        return obj

    async def _run_guarded(self, response: Response, plan: ReplyPlan) -> None:
        try:
            await self._run(response, plan)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must end the response, not hang the call
            self.log(f"{self.call_id} response failed: {type(exc).__name__}: {exc}")
            if self.response is response:
                self.response = None
                self._finish(response, "failed", None)

    async def _run(self, response: Response, plan: ReplyPlan) -> None:
        self.emit(S.RESPONSE_CREATED, response=self._response_object(response, "in_progress", None))
        self.emit(
            S.RATE_LIMITS_UPDATED,
            rate_limits=[
                {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                {"name": "tokens", "limit": 400000, "remaining": 395000, "reset_seconds": 0.75},
            ],
        )
        previous = store.last_id(self.items)
        response.previous_item_id = previous
        if plan.function is not None:
            await self._run_function_call(response, *plan.function)
            return
        if plan.mcp is not None:
            await self._run_mcp(response, plan)
            return
        audio = response.modalities == ["audio"]
        item: JSON = {
            "id": new_id("item"),
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        response.item = item
        self.items.append(item)
        ids = {"response_id": response.id, "item_id": item["id"], "output_index": 0}
        self.emit(S.RESPONSE_OUTPUT_ITEM_ADDED, response_id=response.id, output_index=0, item=item)
        self.emit(S.CONVERSATION_ITEM_ADDED, item=item, previous_item_id=previous)
        part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        self.emit(S.RESPONSE_CONTENT_PART_ADDED, **ids, content_index=0, part=part)
        words = re.findall(r"\S+\s*", plan.text)
        if audio:
            pcm = await synthesize(plan.text)
            duration_ms = len(pcm) * 1000 / RATE
            self.track.play(pcm)
            response.audio_started = True
            self.cleared_by_cancel = False
            self.emit(S.OUTPUT_AUDIO_BUFFER_STARTED, response_id=response.id)
            said = 0
            for word in words:
                due = duration_ms * said / max(1, len(plan.text))
                # the track advances in aiortc's sender task; wait until it has played `due`
                while self.track.played_ms < due:  # noqa: ASYNC110
                    await asyncio.sleep(max(0.005, (due - self.track.played_ms) / 1000))
                self.emit(
                    S.RESPONSE_OUTPUT_AUDIO_TRANSCRIPT_DELTA, **ids, content_index=0, delta=word
                )
                response.spoken += word
                said += len(word)
            await response.drained.wait()
        else:
            for word in words:
                self.emit(S.RESPONSE_OUTPUT_TEXT_DELTA, **ids, content_index=0, delta=word)
                response.spoken += word
                await asyncio.sleep(0.005)
        self._finish(response, "completed", None)

    async def _run_function_call(self, response: Response, name: str, arguments: str) -> None:
        call_id = new_id("call")
        item: JSON = {
            "id": new_id("item"),
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "call_id": call_id,
            "name": name,
            "arguments": "",
        }
        response.item = item
        self.items.append(item)
        self.emit(S.RESPONSE_OUTPUT_ITEM_ADDED, response_id=response.id, output_index=0, item=item)
        self.emit(S.CONVERSATION_ITEM_ADDED, item=item, previous_item_id=response.previous_item_id)
        ids = {
            "response_id": response.id,
            "item_id": item["id"],
            "output_index": 0,
            "call_id": call_id,
        }
        for start in range(0, len(arguments), 16):
            self.emit(
                S.RESPONSE_FUNCTION_CALL_ARGUMENTS_DELTA, **ids, delta=arguments[start : start + 16]
            )
            await asyncio.sleep(0.005)
        self.emit(S.RESPONSE_FUNCTION_CALL_ARGUMENTS_DONE, **ids, arguments=arguments, name=name)
        item.update(arguments=arguments)
        response.spoken = arguments
        self._finish(response, "completed", None)

    # --- MCP tools: listed and called here, as OpenAI's side does (see mcp.py)

    def _list_mcp_tools(self) -> None:
        for server in self.session.get("tools") or []:
            if server.get("type") != "mcp":
                continue
            known = self.mcp_servers.get(server["server_label"])
            if known is not None and known[0] == server:
                continue
            self.mcp_servers[server["server_label"]] = (server, [])
            task = self._spawn(self._list_one(server))
            self._mcp_listing.add(task)
            task.add_done_callback(self._mcp_listing.discard)

    async def _list_one(self, server: JSON) -> None:
        from rtc_voice.localserver import mcp

        label = server["server_label"]
        item: JSON = {
            "id": new_id("mcpl"),
            "type": "mcp_list_tools",
            "server_label": label,
            "tools": [],
        }
        previous = store.insert(self.items, item, None)
        self.emit(S.MCP_LIST_TOOLS_IN_PROGRESS, item_id=item["id"])
        self.emit(S.CONVERSATION_ITEM_ADDED, item=item, previous_item_id=previous)
        try:
            client = mcp.McpClient(server["server_url"], server.get("headers"))
            tools = [t for t in await client.list_tools() if mcp.allowed(server, str(t["name"]))]
        except mcp.McpError as exc:
            self.log(f"{self.call_id} MCP server {label}: {exc}")
            self.emit(S.MCP_LIST_TOOLS_FAILED, item_id=item["id"])
            return
        item["tools"] = [mcp.listed_tool(t) for t in tools]
        self.mcp_servers[label] = (server, [t["name"] for t in item["tools"]])
        self.emit(S.MCP_LIST_TOOLS_COMPLETED, item_id=item["id"])
        self.emit(S.CONVERSATION_ITEM_DONE, item=item, previous_item_id=previous)

    def _mcp_names(self) -> dict[str, tuple[str, bool]]:
        from rtc_voice.localserver.mcp import needs_approval

        names: dict[str, tuple[str, bool]] = {}
        for label, (server, tools) in self.mcp_servers.items():
            for name in tools:
                entry = (label, needs_approval(server, name))
                names.setdefault(name, entry)
                names[f"{label}.{name}"] = entry
        return names

    async def _run_mcp(self, response: Response, plan: ReplyPlan) -> None:
        """An MCP call: first an approval request when the server wants one (the response ends
        there; the client answers), else the call itself, then a reply that speaks its result."""
        from rtc_voice.localserver import mcp

        assert plan.mcp is not None
        label, name, arguments = plan.mcp
        base = {"id": "", "server_label": label, "name": name, "arguments": arguments}
        if plan.ask_first:
            item: JSON = {**base, "id": new_id("mcpr"), "type": "mcp_approval_request"}
            self._start_item(response, item)
            self._finish(response, "completed", None)
            return
        item = {**base, "id": new_id("mcp"), "type": "mcp_call", "arguments": ""}
        if plan.approval_request_id:
            item["approval_request_id"] = plan.approval_request_id
        self._start_item(response, item)
        ids = {"item_id": item["id"], "output_index": 0}
        self.emit(
            S.RESPONSE_MCP_CALL_ARGUMENTS_DELTA, response_id=response.id, **ids, delta=arguments
        )
        self.emit(
            S.RESPONSE_MCP_CALL_ARGUMENTS_DONE, response_id=response.id, **ids, arguments=arguments
        )
        item["arguments"] = arguments
        self.emit(S.RESPONSE_MCP_CALL_IN_PROGRESS, **ids)
        server = self.mcp_servers[label][0]
        try:
            client = mcp.McpClient(server["server_url"], server.get("headers"))
            item["output"] = await client.call_tool(name, json.loads(arguments or "{}"))
            self.emit(S.RESPONSE_MCP_CALL_COMPLETED, **ids)
        except mcp.McpError as exc:
            item["error"] = {"type": "tool_execution_error", "message": str(exc)}
            self.emit(S.RESPONSE_MCP_CALL_FAILED, **ids)
        response.spoken = arguments
        self._finish(response, "completed", None)
        if self.response is None:
            self.start_response({})  # the model goes on to say what the tool returned

    def _start_item(self, response: Response, item: JSON) -> None:
        response.item = item
        self.items.append(item)
        self.emit(S.RESPONSE_OUTPUT_ITEM_ADDED, response_id=response.id, output_index=0, item=item)
        self.emit(S.CONVERSATION_ITEM_ADDED, item=item, previous_item_id=response.previous_item_id)

    def _finish(self, response: Response, status: str, reason: str | None) -> None:
        item = response.item
        if item is not None:
            ids = {"response_id": response.id, "item_id": item["id"], "output_index": 0}
            if item["type"] in ("message", "function_call"):  # MCP items have no status
                item["status"] = "completed" if status == "completed" else "incomplete"
            if item["type"] == "message":
                audio = response.modalities == ["audio"]
                if audio:
                    self.emit(
                        S.RESPONSE_OUTPUT_AUDIO_TRANSCRIPT_DONE,
                        **ids,
                        content_index=0,
                        transcript=response.spoken,
                    )
                    part = {"type": "audio", "transcript": response.spoken}
                    item["content"] = [{"type": "output_audio", "transcript": response.spoken}]
                else:
                    self.emit(
                        S.RESPONSE_OUTPUT_TEXT_DONE, **ids, content_index=0, text=response.spoken
                    )
                    part = {"type": "text", "text": response.spoken}
                    item["content"] = [{"type": "output_text", "text": response.spoken}]
                self.emit(S.RESPONSE_CONTENT_PART_DONE, **ids, content_index=0, part=part)
            self.emit(
                S.RESPONSE_OUTPUT_ITEM_DONE, response_id=response.id, output_index=0, item=item
            )
            self.emit(
                S.CONVERSATION_ITEM_DONE, item=item, previous_item_id=response.previous_item_id
            )
        self.emit(S.RESPONSE_DONE, response=self._response_object(response, status, reason))
        if response.audio_started and status == "completed":
            self.emit(S.OUTPUT_AUDIO_BUFFER_STOPPED, response_id=response.id)
        if self.response is response:
            self.response = None

    def cancel_response(self, reason: str) -> bool:
        """Stop the active response at once; False when there is none."""
        response = self.response
        if response is None:
            return False
        self.response = None
        if response.task is not None:
            response.task.cancel()
        if response.audio_started:
            self.track.clear()
            self.cleared_by_cancel = True
            self.emit(S.OUTPUT_AUDIO_BUFFER_CLEARED, response_id=response.id)
        self._finish(response, "cancelled", reason)
        return True

    def _on_drained(self) -> None:
        if self.response is not None:
            self.response.drained.set()


async def shutdown_all(calls: list[LocalCall]) -> None:
    for call in calls:
        with contextlib.suppress(Exception):
            await call.close("server stopped")
