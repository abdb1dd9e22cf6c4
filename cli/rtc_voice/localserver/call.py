"""One local call: the aiortc answerer, the `oai-events` protocol, VAD turns, paced replies.

It follows OpenAI's GA event order (see shared protocol notes) and never pretends to understand
speech: a spoken turn is answered with how long it was, a typed one is echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import math
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from rtc_voice.audio.pcm import RATE, rms_dbfs
from rtc_voice.audio.tracks import PcmTrack, frame_to_mono
from rtc_voice.localserver.sessions import (
    JSON,
    ParamError,
    invalid,
    merge_session,
    new_id,
    unknown,
    validate_session,
)
from rtc_voice.localserver.vad import EnergyVad, SpeechStarted, SpeechStopped, threshold_dbfs
from rtc_voice.localserver.voice import synthesize
from rtc_voice.rtc import EVENTS_CHANNEL, rtc_configuration

CLIENT_EVENTS = (
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "output_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.retrieve",
    "conversation.item.truncate",
    "conversation.item.delete",
    "response.create",
    "response.cancel",
)
TRANSCRIPTION_DELAY = 0.25  # seconds: user transcripts arrive late, as they do from OpenAI
SEMANTIC_SILENCE_MS = {"low": 1200, "medium": 800, "auto": 800, "high": 500}
AUDIO_TOKENS_IN_PER_S = 10
AUDIO_TOKENS_OUT_PER_S = 20


@dataclass
class ReplyPlan:
    text: str = ""
    function: tuple[str, str] | None = None  # (name, arguments JSON)


def plan_reply(items: list[JSON], tools: list[JSON], speech_ms: dict[str, int]) -> ReplyPlan:
    """Pure: what the local 'model' answers to the conversation so far."""
    for item in reversed(items):
        kind, role = item.get("type"), item.get("role")
        if kind == "function_call_output":
            name = next(
                (
                    i.get("name")
                    for i in items
                    if i.get("call_id") == item.get("call_id") and i.get("type") == "function_call"
                ),
                "the tool",
            )
            return ReplyPlan(f"The tool {name} returned: {item.get('output', '')}")
        if kind != "message" or role != "user":
            continue
        content = item.get("content") or [{}]
        if item["id"] in speech_ms:
            seconds = speech_ms[item["id"]] / 1000
            return ReplyPlan(f"I heard about {seconds:.1f} seconds of speech.")
        text = " ".join(str(c.get("text", "")) for c in content if c.get("type") == "input_text")
        match = re.match(r"^/call\s+(\S+)\s*(.*)$", text.strip(), re.S)
        if match:
            name, args = match.group(1), match.group(2).strip() or "{}"
            names = [t.get("name") for t in tools]
            if name not in names:
                return ReplyPlan(f"There is no tool named {name}.")
            try:
                json.loads(args)
            except json.JSONDecodeError:
                return ReplyPlan(f"The arguments for {name} are not valid JSON.")
            return ReplyPlan(function=(name, args))
        snippet = text.strip()[:300] or "nothing"
        return ReplyPlan(f"You said: {snippet}")
    return ReplyPlan("Hello. This is the rtc-voice local server. Speak, or type a message.")


def usage_for(
    items: list[JSON],
    instructions: str,
    speech_ms: dict[str, int],
    out_text: str,
    out_audio_ms: float,
    cached: int,
) -> JSON:
    """Pure: token usage derived from text and audio lengths (4 chars/token, 10 or 20 tok/s)."""
    text_chars = len(instructions)
    audio_in = 0
    for item in items:
        if item["id"] in speech_ms:
            audio_in += math.ceil(speech_ms[item["id"]] / 1000 * AUDIO_TOKENS_IN_PER_S)
        for part in item.get("content") or []:
            text_chars += len(str(part.get("text") or part.get("transcript") or ""))
        text_chars += len(str(item.get("arguments") or item.get("output") or ""))
    text_in = math.ceil(text_chars / 4)
    total_in = text_in + audio_in
    cached = min(cached, total_in)
    cached_text = min(cached, text_in)
    out_text_tokens = math.ceil(len(out_text) / 4)
    out_audio_tokens = math.ceil(out_audio_ms / 1000 * AUDIO_TOKENS_OUT_PER_S)
    total_out = out_text_tokens + out_audio_tokens
    return {
        "total_tokens": total_in + total_out,
        "input_tokens": total_in,
        "output_tokens": total_out,
        "input_token_details": {
            "text_tokens": text_in,
            "audio_tokens": audio_in,
            "image_tokens": 0,
            "cached_tokens": cached,
            "cached_tokens_details": {
                "text_tokens": cached_text,
                "audio_tokens": cached - cached_text,
                "image_tokens": 0,
            },
        },
        "output_token_details": {"text_tokens": out_text_tokens, "audio_tokens": out_audio_tokens},
    }


@dataclass
class Response:
    id: str
    modalities: list[str]
    task: asyncio.Task[None] | None = None
    item: JSON | None = None
    previous_item_id: str | None = None
    spoken: str = ""
    audio_started: bool = False
    drained: asyncio.Event = field(default_factory=asyncio.Event)


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
    ) -> None:
        self.call_id = call_id
        self.session = session
        self.log = log
        self.stats = CallStats()
        self.items: list[JSON] = []
        self.speech_ms: dict[str, int] = {}
        self.conversation_id = new_id("conv")
        self.response: Response | None = None
        self.last_response_id: str | None = None  # output_audio_buffer.cleared names one
        self.channel: RTCDataChannel | None = None
        self.track = PcmTrack(on_drained=self._on_drained)
        self.pc = RTCPeerConnection(rtc_configuration(()))
        self.started = time.monotonic()
        self._outbox: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_end = on_end
        self._closed = False
        self._last_input_tokens = 0
        self._buffer_ms = 0
        self._buffer_voiced_ms = 0
        self._pending_item_id: str | None = None
        self.vad = self._make_vad(0)
        self._cap = asyncio.get_running_loop().call_later(max_duration, self._expire, max_duration)

    # --- set-up and tear-down

    async def answer(self, offer_sdp: str) -> str:
        pc = self.pc

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label != EVENTS_CHANNEL:
                return
            self.channel = channel
            channel.on("message", self._on_message)
            if channel.readyState == "open":
                self._on_open()
            else:
                channel.on("open", self._on_open)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self._spawn(self._consume(track))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close(f"connection {pc.connectionState}")

        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        pc.addTrack(self.track)
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    async def close(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self._cap.cancel()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:  # close() may itself run in one of our tasks
                task.cancel()
        self.track.stop()
        if self.channel is not None and self.channel.readyState == "open":
            # aiortc's close() tells the peer nothing; a stream reset on the events channel
            # does, so clients notice the hang-up at once instead of at ICE consent expiry.
            closed = asyncio.Event()
            self.channel.on("close", closed.set)
            self.channel.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await closed.wait()
        await self.pc.close()
        elapsed = time.monotonic() - self.started
        self.stats.max_late_ms = self.track.max_late_ms
        self.log(f"{self.call_id} ended after {elapsed:.1f} s ({reason})")
        self._on_end(self)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _expire(self, seconds: float) -> None:
        minutes = seconds / 60
        shown = f"{minutes:g} minutes" if minutes >= 1 else f"{seconds:g} seconds"
        self.emit(
            "error",
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
        message = json.dumps({"type": type_, "event_id": new_id("event"), **fields})
        if self.channel is not None and self.channel.readyState == "open":
            self.channel.send(message)
        else:
            self._outbox.append(message)

    def _on_open(self) -> None:
        assert self.channel is not None
        self.channel.send(
            json.dumps(
                {"type": "session.created", "event_id": new_id("event"), "session": self.session}
            )
        )
        for message in self._outbox:
            self.channel.send(message)
        self._outbox.clear()

    def _error(self, error: ParamError, event_id: str | None) -> None:
        self.emit("error", error=error.as_error(event_id))

    # --- incoming audio and turn detection

    def _make_vad(self, now_ms: int) -> EnergyVad:
        detection = self.session["audio"]["input"].get("turn_detection") or {}
        silence = detection.get("silence_duration_ms", 500)
        if detection.get("type") == "semantic_vad":
            silence = SEMANTIC_SILENCE_MS.get(detection.get("eagerness", "auto"), 800)
        vad = EnergyVad(
            threshold=detection.get("threshold", 0.5),
            prefix_padding_ms=detection.get("prefix_padding_ms", 300),
            silence_duration_ms=silence,
        )
        vad.now_ms = now_ms
        return vad

    async def _consume(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.AudioFrame)
            level = rms_dbfs(frame_to_mono(frame))
            self._on_audio(level, round(frame.samples * 1000 / frame.sample_rate))

    def _on_audio(self, level: float, frame_ms: int) -> None:
        detection = self.session["audio"]["input"].get("turn_detection")
        self._buffer_ms += frame_ms
        if level >= threshold_dbfs((detection or {}).get("threshold", 0.5)):
            self._buffer_voiced_ms += frame_ms
        events = self.vad.feed(level, frame_ms)
        if detection is None:
            return
        for event in events:
            if isinstance(event, SpeechStarted):
                self._pending_item_id = new_id("item")
                self.emit(
                    "input_audio_buffer.speech_started",
                    audio_start_ms=event.audio_start_ms,
                    item_id=self._pending_item_id,
                )
                if self.response is not None and detection.get("interrupt_response", True):
                    self.cancel_response("turn_detected")
            elif isinstance(event, SpeechStopped):
                item_id = self._pending_item_id or new_id("item")
                self.emit(
                    "input_audio_buffer.speech_stopped",
                    audio_end_ms=event.audio_end_ms,
                    item_id=item_id,
                )
                self._commit(item_id, event.speech_ms, auto_respond=True)

    def _commit(self, item_id: str, speech_ms: int, *, auto_respond: bool) -> None:
        self._buffer_ms = self._buffer_voiced_ms = 0
        self._pending_item_id = None
        previous = self.items[-1]["id"] if self.items else None
        self.emit("input_audio_buffer.committed", item_id=item_id, previous_item_id=previous)
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
        transcript = f"[speech {seconds:.1f} s]"
        ids = {"item_id": item["id"], "content_index": 0}
        self.emit("conversation.item.input_audio_transcription.delta", **ids, delta=transcript)
        item["content"][0]["transcript"] = transcript
        self.emit(
            "conversation.item.input_audio_transcription.completed",
            **ids,
            transcript=transcript,
            usage={"type": "duration", "seconds": round(seconds, 3)},
        )

    # --- the conversation

    def _add_item(self, item: JSON, previous: str | None) -> None:
        if previous is None or previous == "root":
            index = 0 if previous == "root" else len(self.items)
        else:
            index = next(i for i, it in enumerate(self.items) if it["id"] == previous) + 1
        previous_id = self.items[index - 1]["id"] if index > 0 else None
        self.items.insert(index, item)
        self.emit("conversation.item.added", item=item, previous_item_id=previous_id)
        self.emit("conversation.item.done", item=item, previous_item_id=previous_id)

    def _find(self, item_id: object, event_id: str | None, param: str = "item_id") -> JSON | None:
        for item in self.items:
            if item["id"] == item_id:
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
        if kind not in CLIENT_EVENTS:
            self._error(
                ParamError(
                    "invalid_value",
                    "type",
                    f"Invalid value: '{kind}'. Supported values are: "
                    + ", ".join(f"'{t}'" for t in CLIENT_EVENTS)
                    + ".",
                ),
                event_id,
            )
            return
        handler = getattr(self, "_on_" + kind.replace(".", "_"))
        try:
            handler(event)
        except ParamError as error:
            self._error(error, event_id)

    def _on_session_update(self, event: JSON) -> None:
        session = validate_session(event.get("session"))
        now = self.vad.now_ms
        self.session = merge_session(self.session, session)
        self.vad = self._make_vad(now)
        self.emit("session.updated", session=self.session)

    def _on_input_audio_buffer_append(self, event: JSON) -> None:
        """Audio arrives on the RTP track over WebRTC; appended base64 is accepted and ignored."""

    def _on_input_audio_buffer_commit(self, event: JSON) -> None:
        if self._buffer_ms < 100:
            raise ParamError(
                "input_audio_buffer_commit_empty",
                None,
                "Error committing input audio buffer: buffer too small. Expected at least 100ms "
                f"of audio, but buffer only has {self._buffer_ms:.2f}ms of audio.",
            )
        item_id = self._pending_item_id or new_id("item")
        self._commit(item_id, self._buffer_voiced_ms, auto_respond=False)

    def _on_input_audio_buffer_clear(self, event: JSON) -> None:
        self._buffer_ms = self._buffer_voiced_ms = 0
        self.emit("input_audio_buffer.cleared")

    def _on_output_audio_buffer_clear(self, event: JSON) -> None:
        if self.response is not None and self.response.audio_started:
            self.cancel_response("client_cancelled")
        else:
            self.track.clear()
            # response_id is required by the GA schema even with nothing playing: the last
            # response's, or a fresh id before there was any
            self.emit(
                "output_audio_buffer.cleared",
                response_id=self.last_response_id or new_id("resp"),
            )

    def _on_conversation_item_create(self, event: JSON) -> None:
        for key in event:
            if key not in ("type", "event_id", "item", "previous_item_id"):
                raise unknown(key)
        item = copy.deepcopy(event.get("item"))
        if not isinstance(item, dict):
            raise ParamError(
                "missing_required_parameter", "item", "Missing required parameter: 'item'."
            )
        allowed = {
            "id",
            "object",
            "type",
            "status",
            "role",
            "content",
            "call_id",
            "name",
            "arguments",
            "output",
        }
        for key in item:
            if key not in allowed:
                raise unknown(f"item.{key}")
        kind = item.get("type")
        if kind == "message":
            if item.get("role") not in ("user", "assistant", "system"):
                raise invalid("item.role", item.get("role"), "'user', 'assistant' or 'system'")
            if not isinstance(item.get("content"), list):
                raise invalid("item.content", item.get("content"), "a list of content parts")
        elif kind == "function_call_output":
            if not item.get("call_id"):
                raise ParamError(
                    "missing_required_parameter",
                    "item.call_id",
                    "Missing required parameter: 'item.call_id'.",
                )
            item.setdefault("output", "")
        elif kind != "function_call":
            raise invalid("item.type", kind, "'message', 'function_call' or 'function_call_output'")
        item.setdefault("id", new_id("item"))
        item.update(object="realtime.item", status="completed")
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
            self.emit("conversation.item.retrieved", item=item)

    def _on_conversation_item_truncate(self, event: JSON) -> None:
        item = self._find(event.get("item_id"), event.get("event_id"))
        if item is not None:
            self.emit(
                "conversation.item.truncated",
                item_id=item["id"],
                content_index=event.get("content_index", 0),
                audio_end_ms=event.get("audio_end_ms", 0),
            )

    def _on_conversation_item_delete(self, event: JSON) -> None:
        item = self._find(event.get("item_id"), event.get("event_id"))
        if item is not None:
            self.items.remove(item)
            self.emit("conversation.item.deleted", item_id=item["id"])

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
        plan = plan_reply(self.items, self.session.get("tools") or [], self.speech_ms)
        response.task = self._spawn(self._run_guarded(response, plan))

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
        self.emit("response.created", response=self._response_object(response, "in_progress", None))
        self.emit(
            "rate_limits.updated",
            rate_limits=[
                {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                {"name": "tokens", "limit": 400000, "remaining": 395000, "reset_seconds": 0.75},
            ],
        )
        previous = self.items[-1]["id"] if self.items else None
        response.previous_item_id = previous
        if plan.function is not None:
            await self._run_function_call(response, *plan.function)
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
        self.emit("response.output_item.added", response_id=response.id, output_index=0, item=item)
        self.emit("conversation.item.added", item=item, previous_item_id=previous)
        part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        self.emit("response.content_part.added", **ids, content_index=0, part=part)
        words = re.findall(r"\S+\s*", plan.text)
        if audio:
            pcm = await synthesize(plan.text)
            duration_ms = len(pcm) * 1000 / RATE
            self.track.play(pcm)
            response.audio_started = True
            self.emit("output_audio_buffer.started", response_id=response.id)
            said = 0
            for word in words:
                due = duration_ms * said / max(1, len(plan.text))
                # the track advances in aiortc's sender task; wait until it has played `due`
                while self.track.played_ms < due:  # noqa: ASYNC110
                    await asyncio.sleep(max(0.005, (due - self.track.played_ms) / 1000))
                self.emit(
                    "response.output_audio_transcript.delta", **ids, content_index=0, delta=word
                )
                response.spoken += word
                said += len(word)
            await response.drained.wait()
        else:
            for word in words:
                self.emit("response.output_text.delta", **ids, content_index=0, delta=word)
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
        self.emit("response.output_item.added", response_id=response.id, output_index=0, item=item)
        self.emit("conversation.item.added", item=item, previous_item_id=response.previous_item_id)
        ids = {
            "response_id": response.id,
            "item_id": item["id"],
            "output_index": 0,
            "call_id": call_id,
        }
        for start in range(0, len(arguments), 16):
            self.emit(
                "response.function_call_arguments.delta", **ids, delta=arguments[start : start + 16]
            )
            await asyncio.sleep(0.005)
        self.emit("response.function_call_arguments.done", **ids, arguments=arguments, name=name)
        item.update(arguments=arguments)
        response.spoken = arguments
        self._finish(response, "completed", None)

    def _finish(self, response: Response, status: str, reason: str | None) -> None:
        item = response.item
        if item is not None:
            ids = {"response_id": response.id, "item_id": item["id"], "output_index": 0}
            item["status"] = "completed" if status == "completed" else "incomplete"
            if item["type"] == "message":
                audio = response.modalities == ["audio"]
                if audio:
                    self.emit(
                        "response.output_audio_transcript.done",
                        **ids,
                        content_index=0,
                        transcript=response.spoken,
                    )
                    part = {"type": "audio", "transcript": response.spoken}
                    item["content"] = [{"type": "output_audio", "transcript": response.spoken}]
                else:
                    self.emit(
                        "response.output_text.done", **ids, content_index=0, text=response.spoken
                    )
                    part = {"type": "text", "text": response.spoken}
                    item["content"] = [{"type": "output_text", "text": response.spoken}]
                self.emit("response.content_part.done", **ids, content_index=0, part=part)
            self.emit(
                "response.output_item.done", response_id=response.id, output_index=0, item=item
            )
            self.emit(
                "conversation.item.done", item=item, previous_item_id=response.previous_item_id
            )
        self.emit("response.done", response=self._response_object(response, status, reason))
        if response.audio_started and status == "completed":
            self.emit("output_audio_buffer.stopped", response_id=response.id)
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
            self.emit("output_audio_buffer.cleared", response_id=response.id)
        self._finish(response, "cancelled", reason)
        return True

    def _on_drained(self) -> None:
        if self.response is not None:
            self.response.drained.set()


async def shutdown_all(calls: list[LocalCall]) -> None:
    for call in calls:
        with contextlib.suppress(Exception):
            await call.close("server stopped")
