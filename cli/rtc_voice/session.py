"""One `talk` call, orchestrated: audio, key, WebRTC, events, playback, files, leaving.

The presenter (live terminal UI, plain lines or JSON) only shows things and calls the actions
here (mute, interrupt, send_text, push_to_talk, quit); all call logic lives in this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from rtc_voice import events
from rtc_voice.audio.io import Microphone, Recorder, Sink, open_microphone, open_speaker
from rtc_voice.audio.tracks import MicrophoneTrack, PcmTrack
from rtc_voice.config import Settings
from rtc_voice.conversation import Conversation, Turn
from rtc_voice.credentials import ApiKey
from rtc_voice.errors import ExitCode, RtcVoiceError
from rtc_voice.tools import TOOLS, run_tool
from rtc_voice.transcript import TranscriptWriter

if TYPE_CHECKING:
    from rtc_voice.api import RealtimeApi
    from rtc_voice.localserver import LocalServer
    from rtc_voice.rtc import RealtimeConnection

JSON = dict[str, Any]
SESSION_CAP_S = 3600.0  # OpenAI closes Realtime sessions after 60 minutes
INPUT_GRACE_S = 30.0  # after a WAV input ends: longest wait for the replies it caused


class Presenter(Protocol):
    def attach(self, session: CallSession) -> None: ...

    def event(self, event: JSON, direction: str) -> None: ...

    def turns_finished(self, turns: list[Turn]) -> None: ...

    def notice(self, text: str, *, error: bool = False) -> None: ...

    async def run(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class TalkOptions:
    local: bool = False
    token: str | None = None
    input: str | None = None
    output: str | None = None
    transcript: Path | None = None
    record: Path | None = None
    ptt: bool = False
    say: str | None = None
    max_duration: float | None = None
    json: bool = False


@dataclass
class CallState:
    phase: str = "starting"  # starting, minting, connecting, connected, ending, ended
    muted: bool = False
    ptt_active: bool = False
    connected_at: float | None = None
    mic_description: str = ""


class CallSession:
    def __init__(
        self,
        settings: Settings,
        options: TalkOptions,
        presenter: Presenter,
        *,
        api_key: ApiKey | None,
        prices: dict[str, float] | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.presenter = presenter
        self.api_key = api_key
        self.prices = prices
        self.state = CallState()
        self.conversation = Conversation()
        self.exit_code = ExitCode.OK
        self.end_reason = ""
        self.mic: Microphone | None = None
        self.sink: Sink | None = None
        self.conn: RealtimeConnection | None = None
        self._api: RealtimeApi | None = None
        self._server: LocalServer | None = None
        self._recorder: Recorder | None = None
        self._transcript: TranscriptWriter | None = None
        self._ended = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._answered_calls: set[str] = set()
        self._finished_turns: set[str] = set()
        self._sigints = 0
        self._hangup_key: str | None = None
        self._cap_reached = False
        self._started = time.monotonic()

    # --- actions (keys and flags call these) ------------------------------------------------

    def quit(self, reason: str, code: ExitCode = ExitCode.OK) -> None:
        if not self._ended.is_set():
            self.end_reason = reason
            self.exit_code = code
            self._ended.set()

    def toggle_mute(self) -> None:
        if self.mic is not None:
            self.state.muted = not self.state.muted
            self.mic.track.muted = self.state.muted

    def interrupt(self) -> None:
        """Stop the assistant now: cancel the response, clear its audio, flush ours."""
        if self.conn is None:
            return
        if self.conversation.active_response:
            self._send({"type": "response.cancel"})
        self._send({"type": "output_audio_buffer.clear"})
        self._flush_playback()

    def send_text(self, text: str) -> None:
        text = text.strip()
        if not text or self.conn is None:
            return
        self._send(events.user_message(text))
        if self.conversation.active_response:
            self._send({"type": "response.cancel"})
            self._flush_playback()
        self._send(events.RESPONSE_CREATE)

    def push_to_talk(self) -> None:
        """Space with --ptt: the first press starts a turn, the second ends and answers it."""
        if self.conn is None:
            return
        if not self.state.ptt_active:
            if self.conversation.assistant_speaking:
                self.interrupt()
            self._send({"type": "input_audio_buffer.clear"})
            self.state.ptt_active = True
        else:
            self.state.ptt_active = False
            self._send({"type": "input_audio_buffer.commit"})
            self._send(events.RESPONSE_CREATE)

    # --- running ------------------------------------------------------------------------------

    async def run(self) -> ExitCode:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, self._on_sigint)
            loop.add_signal_handler(
                signal.SIGTERM, self.quit, "terminated (SIGTERM)", ExitCode.TERMINATED
            )
        self.presenter.attach(self)
        ui = asyncio.ensure_future(self.presenter.run())
        try:
            await self._start()
            await self._ended.wait()
        finally:
            await self._cleanup()
            ui.cancel()
            with contextlib.suppress(BaseException):
                await ui
            self.presenter.close()
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
                loop.remove_signal_handler(signal.SIGTERM)
        return self.exit_code

    def _on_sigint(self) -> None:
        self._sigints += 1
        if self._sigints > 1:
            self.presenter.close()  # restore the terminal, then leave at once
            import os

            os._exit(int(ExitCode.INTERRUPTED))
        self.quit("interrupted (Ctrl-C)", ExitCode.INTERRUPTED)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if isinstance(exc, RtcVoiceError):
                self.presenter.notice(exc.message, error=True)
                self.quit(exc.message, exc.exit_code)
            else:
                self.presenter.notice(f"internal error: {type(exc).__name__}: {exc}", error=True)
                self.quit("internal error", ExitCode.FAILURE)

    async def _start(self) -> None:
        from rtc_voice.api import RealtimeApi

        opts, settings = self.options, self.settings
        if opts.transcript is not None:
            self._transcript = TranscriptWriter(opts.transcript.expanduser())
        if opts.record is not None:
            self._recorder = Recorder(opts.record.expanduser())
        self.mic = open_microphone(opts.input if opts.input is not None else settings.input_device)
        self.sink = open_speaker(opts.output if opts.output is not None else settings.output_device)
        self.state.mic_description = self.mic.description
        if self._recorder is not None:
            self.mic.track.tap = self._recorder.microphone
        if isinstance(self.mic.track, MicrophoneTrack):
            self.mic.track.on_silent = self._mic_silent
            self.mic.track.on_stalled = self._mic_stalled

        base_url = settings.base_url
        key_value = self.api_key.value if self.api_key else None
        if opts.local:
            from rtc_voice.localserver import LocalServer

            self._server = LocalServer()
            await self._server.start()
            base_url = self._server.base_url
            key_value = "sk-local-" + secrets.token_hex(8)  # the local server takes any key
        from rtc_voice.rtc import is_loopback_host, use_loopback_ice

        if opts.local or (
            not settings.ice_servers and is_loopback_host(urlsplit(base_url).hostname or "")
        ):
            use_loopback_ice()
        self._api = RealtimeApi(base_url, timeout=settings.connect_timeout)
        self._hangup_key = key_value

        if opts.token:
            ephemeral = opts.token
        else:
            self.state.phase = "minting"
            assert key_value is not None
            secret = await self._api.create_client_secret(
                key_value, events.client_secret_request(settings)
            )
            ephemeral = secret.value

        from rtc_voice import rtc

        self.state.phase = "connecting"
        api, hangup_key = self._api, key_value

        async def hangup(call_id: str) -> None:
            if hangup_key is not None:  # none with --token
                await api.hangup(hangup_key, call_id)

        self.conn = await rtc.connect(
            self._api,
            ephemeral,
            self.mic.track,
            ice_servers=settings.ice_servers,
            connect_timeout=settings.connect_timeout,
            jitter_buffer_frames=settings.jitter_buffer_frames,
            hangup=hangup,
        )
        self.conn.on_send = self._on_sent
        self.state.connected_at = time.monotonic()
        self.state.phase = "connected"
        self.sink.start()
        if isinstance(self.mic.track, PcmTrack) and self.mic.file_pcm is not None:
            self.mic.track.on_drained = self._input_drained
        self.mic.start()
        self._send(events.session_tools(TOOLS))
        self._spawn(self._pump_events())
        self._spawn(self._pump_audio())
        if opts.max_duration:
            asyncio.get_running_loop().call_later(
                opts.max_duration, self.quit, f"reached --max-duration {opts.max_duration:g} s"
            )
        if opts.say:
            self.send_text(opts.say)

    # --- events -------------------------------------------------------------------------------

    def _send(self, event: JSON) -> None:
        if self.conn is None or self.conn.closed:
            return
        try:
            self.conn.send(event)
        except RtcVoiceError as exc:
            self.presenter.notice(exc.message, error=True)

    def _on_sent(self, event: JSON) -> None:
        self.conversation.apply(event, "client")
        self.presenter.event(event, "client")

    async def _pump_events(self) -> None:
        assert self.conn is not None
        while True:
            event = await self.conn.events.get()
            kind = event.get("type")
            if kind == "rtc_voice.channel_closed":
                if self._cap_reached:
                    self.quit("the session reached its maximum duration")
                else:
                    self.quit("the server ended the call", ExitCode.CALL)
                return
            if kind == "input_audio_buffer.speech_started" and self.conversation.assistant_speaking:
                self._flush_playback()  # barge-in: stop old audio at once
            self.conversation.apply(event)
            self.presenter.event(event, "server")
            if kind == "error":
                error = event.get("error") or {}
                if error.get("code") == "session_expired" or "maximum duration" in str(
                    error.get("message")
                ):
                    self._cap_reached = True
                self.presenter.notice(f"server error: {error.get('message')}", error=True)
            elif kind == "response.done":
                self._answer_function_calls(event)
            self._publish_turns()

    def _publish_turns(self) -> None:
        finished = self.conversation.newly_final(self._finished_turns)
        if finished:
            self.presenter.turns_finished(finished)
        if self._transcript is not None:
            self._transcript.update(self.conversation)

    def _answer_function_calls(self, event: JSON) -> None:
        answered = False
        for item in (event.get("response") or {}).get("output") or []:
            if item.get("type") != "function_call" or item.get("call_id") in self._answered_calls:
                continue
            self._answered_calls.add(item["call_id"])
            output = run_tool(str(item.get("name")), str(item.get("arguments") or "{}"))
            self._send(events.function_call_output(item["call_id"], output))
            answered = True
        if answered:
            self._send(events.RESPONSE_CREATE)

    def _flush_playback(self) -> None:
        if self.sink is not None:
            self.sink.flush()
        if self._recorder is not None:
            self._recorder.flush_assistant()
        self.conversation.interrupt_locally()

    async def _pump_audio(self) -> None:
        from aiortc.mediastreams import MediaStreamError

        from rtc_voice.audio.tracks import frame_to_mono

        assert self.conn is not None and self.conn.remote_audio is not None and self.sink
        track = await self.conn.remote_audio
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            samples = frame_to_mono(frame)
            self.sink.write(samples)
            if self._recorder is not None:
                self._recorder.assistant(samples)

    def _mic_silent(self) -> None:
        self.presenter.notice(
            "The microphone has delivered only silence for 4 s: check the input device "
            "(`rtc-voice devices`) and that this terminal may use the microphone.",
            error=True,
        )

    def _mic_stalled(self) -> None:
        self.presenter.notice(
            f"The {self.state.mic_description} stopped delivering audio (unplugged?); sending "
            "silence. Type with t, or quit and pick another with --input.",
            error=True,
        )

    def _input_drained(self) -> None:
        if self.settings.turn_detection == "none":
            self._send({"type": "input_audio_buffer.commit"})
            self._send(events.RESPONSE_CREATE)
        self._spawn(self._finish_when_quiet())

    async def _finish_when_quiet(self) -> None:
        """The input file has been sent: leave once its replies are over (bounded)."""
        settle = self.settings.silence_duration_ms / 1000 + 1.0
        deadline = time.monotonic() + INPUT_GRACE_S
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            busy = (
                self.conversation.active_response is not None
                or self.conversation.speaking != "listening"
                or any(t.awaiting_transcript for t in self.conversation.turns())
            )
            now = time.monotonic()
            quiet_since = None if busy else (quiet_since or now)
            if quiet_since is not None and now - quiet_since >= settle:
                self.quit("the input file was sent and answered")
                return
            await asyncio.sleep(0.05)
        self.quit("the input file was sent; stopped waiting for replies")

    # --- leaving ------------------------------------------------------------------------------

    async def _cleanup(self) -> None:
        self.state.phase = "ending"
        for task in list(self._tasks):
            task.cancel()
        conn, api = self.conn, self._api
        if conn is not None:
            if conn.call_id and self._hangup_key and api is not None:  # none with --token
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(3):
                        await api.hangup(self._hangup_key, conn.call_id)
            with contextlib.suppress(Exception):
                await conn.close()
        if self.mic is not None:
            self.mic.track.stop()
        if self.sink is not None:
            self.sink.close()
        if self._recorder is not None:
            self._recorder.close()
        if self._transcript is not None:
            if self.state.connected_at is not None:
                self._transcript.finish(self.conversation, self.cost_usd)
            else:  # no call, nothing to write: an earlier call's transcript stays as it was
                self._transcript.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.stop()
        if api is not None:
            await api.aclose()
        self.state.phase = "ended"

    # --- for presenters -----------------------------------------------------------------------

    @property
    def cost_usd(self) -> float | None:
        return self.conversation.usage.cost(self.prices)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - (self.state.connected_at or self._started)

    @property
    def time_left(self) -> float | None:
        if self.state.connected_at is None:
            return None
        return max(0.0, SESSION_CAP_S - self.elapsed)
