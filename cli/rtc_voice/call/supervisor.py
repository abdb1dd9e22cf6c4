"""One `talk` call carried out: the state machine's effects, the tasks, the files, leaving.

Every task of the call (the presenter's screen, the key request, connecting, the event pump,
the audio pump, tools, timers) runs in one `asyncio.TaskGroup` through `_spawn`, which turns an
exception into a `TaskFailed` input: the call ends with a sentence (kept in `failure` for the
CLI to print, with its traceback under --debug), and every task is cancelled and awaited on the
way out. The microphone track and the file writer report their failures the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from rtc_voice.call import state as st
from rtc_voice.call.controls import (
    CallSnapshot,
    Command,
    Controls,
    HangUp,
    Interrupt,
    PushToTalk,
    SendText,
    ToggleMute,
)
from rtc_voice.config import Settings
from rtc_voice.conversation import Conversation, Turn
from rtc_voice.credentials import ApiKey
from rtc_voice.errors import ExitCode, FileError, RtcVoiceError
from rtc_voice.eventlog import EventLog
from rtc_voice.protocol import client as proto
from rtc_voice.protocol import server as ev
from rtc_voice.protocol.defaults import SESSION_CAP_SECONDS
from rtc_voice.sinks import WriterThread
from rtc_voice.tools import ToolRegistry, default_registry
from rtc_voice.transcript import TranscriptWriter

if TYPE_CHECKING:
    from rtc_voice.api import RealtimeApi
    from rtc_voice.audio.io import Microphone, Recorder, Sink
    from rtc_voice.audio.pcm import Pcm
    from rtc_voice.localserver import LocalServer
    from rtc_voice.rtc.peer import Offer, RealtimeConnection

JSON = dict[str, Any]
INPUT_GRACE_S = 30.0  # after a WAV input ends: longest wait for the replies it caused
SNAPSHOT_TURNS = 60
SNAPSHOT_LOG_LINES = 12


class Presenter(Protocol):
    def bind(self, controls: Controls, snapshot: Callable[[], CallSnapshot]) -> None: ...

    def event(self, event: Mapping[str, Any], direction: str) -> None: ...

    def turns_finished(self, turns: list[Turn]) -> None: ...

    def notice(self, text: str, *, error: bool = False) -> None: ...

    async def run(self) -> None: ...

    def close(self, turns: Sequence[Turn]) -> None: ...


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


class InternalError(RtcVoiceError):
    """A bug: an exception no part of rtc-voice expected."""


class CallSupervisor:
    def __init__(
        self,
        settings: Settings,
        options: TalkOptions,
        presenter: Presenter,
        *,
        api_key: ApiKey | None,
        prices: Mapping[str, float] | None = None,
        tools: ToolRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.options = options
        self.presenter = presenter
        self.api_key = api_key
        self.prices = prices
        self.tools = tools if tools is not None else default_registry()
        self.clock = clock
        self.state: st.State = st.Idle()
        self.conversation = Conversation()
        self.log = EventLog()
        self.failure: RtcVoiceError | None = None  # the first error that ended the call
        self.muted = False
        self.ptt_active = False
        self.mic: Microphone | None = None
        self.sink: Sink | None = None
        self.conn: RealtimeConnection | None = None
        self._offer: asyncio.Future[Offer] | None = None  # made while the key is minted
        self._api: RealtimeApi | None = None
        self._server: LocalServer | None = None
        self._writer: WriterThread | None = None
        self._recorder: Recorder | None = None
        self._transcript: TranscriptWriter | None = None
        self._base_url = settings.base_url
        self._key: str | None = None  # the standard key: minting and hang-up only
        self._ephemeral: str | None = options.token
        self._loopback = False
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ending = asyncio.Event()
        self._answered_calls: set[str] = set()
        self._finished_turns: set[str] = set()
        self._sigints = 0
        self._started = clock()

    # --- the state machine ------------------------------------------------------------------

    def dispatch(self, event: st.Input) -> None:
        self.state, effects = st.step(self.state, event, self.clock())
        for effect in effects:
            match effect:
                case st.MakeOffer():
                    self._offer = asyncio.get_running_loop().create_future()
                    self._spawn("offer", self._make_offer(self._offer))
                case st.MintKey():
                    self._spawn("key request", self._mint())
                case st.OpenCall():
                    self._spawn("connection", self._open_call())
                case st.StartMedia():
                    self._start_media()
                case st.Notify(text=text, error=error):
                    self.presenter.notice(text, error=error)
                case st.TearDown():
                    self._ending.set()

    def quit(self, reason: str, code: ExitCode = ExitCode.OK) -> None:
        self.dispatch(st.Quit(reason, code))

    @property
    def exit_code(self) -> ExitCode:
        if isinstance(self.state, st.Ending | st.Ended | st.Failed):
            return self.state.code
        return ExitCode.OK

    @property
    def end_reason(self) -> str:
        return self.state.reason if isinstance(self.state, st.Ending | st.Ended | st.Failed) else ""

    # --- tasks ------------------------------------------------------------------------------

    def _spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
        """Run `coro` as a task of the call; its exception ends the call. Once the call is
        ending nothing new starts (a late callback's work is dropped)."""
        if self._tg is None or self._ending.is_set():
            coro.close()
            return None

        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.fail(name, exc)

        task = self._tg.create_task(guarded(), name=f"rtc-voice {name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def fail(self, where: str, exc: BaseException) -> None:
        """Something in `where` failed: end the call, keeping the first error."""
        if isinstance(exc, RtcVoiceError):
            error = exc
        elif isinstance(exc, OSError) and where == "file writer":
            error = FileError(
                f"Writing the recording or transcript failed: {exc.strerror or exc}.",
                hint="Check the disk space and permissions of the target folder.",
            )
            error.__cause__ = exc
        else:
            error = InternalError(
                f"Internal error in the {where}: {type(exc).__name__}: {exc}",
                hint="Run with --debug to see the traceback, and please report it.",
            )
            error.__cause__ = exc
        if self.failure is None:
            self.failure = error  # the CLI prints it (and, with --debug, its traceback)
        self.dispatch(st.TaskFailed(error.message, error.exit_code))

    # --- running ----------------------------------------------------------------------------

    async def run(self) -> ExitCode:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, self._on_sigint)
            loop.add_signal_handler(
                signal.SIGTERM, self.quit, "terminated (SIGTERM)", ExitCode.TERMINATED
            )
        self.presenter.bind(self, self.snapshot)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                ui = self._spawn("screen", self.presenter.run())
                assert ui is not None
                try:
                    await self._prepare()
                except RtcVoiceError as exc:
                    self.fail("set-up", exc)
                else:
                    self.dispatch(st.Start(have_key=self._ephemeral is not None))
                await self._ending.wait()
                await self._teardown(keep=ui)
                ui.cancel()
        finally:
            self._tg = None
            self.presenter.close(self.conversation.turns())
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
                loop.remove_signal_handler(signal.SIGTERM)
        self.dispatch(st.TornDown())
        return self.exit_code

    def _on_sigint(self) -> None:
        self._sigints += 1
        if self._sigints > 1:
            self.presenter.close(self.conversation.turns())  # restore the terminal, leave now
            os._exit(int(ExitCode.INTERRUPTED))
        self.quit("interrupted (Ctrl-C)", ExitCode.INTERRUPTED)

    async def _prepare(self) -> None:
        """Files, devices, the embedded server and the HTTP client; errors here are the user's
        input (a missing file, a bad device) and end the call before anything is sent."""
        from rtc_voice.api import RealtimeApi
        from rtc_voice.audio.io import Recorder, open_microphone, open_speaker
        from rtc_voice.rtc.ice import loopback_only

        opts, settings = self.options, self.settings
        loop = asyncio.get_running_loop()

        def writer_failed(exc: BaseException) -> None:  # called on the writer thread
            loop.call_soon_threadsafe(self.fail, "file writer", exc)

        self._writer = WriterThread(on_error=writer_failed)
        if opts.transcript is not None:
            self._transcript = TranscriptWriter(opts.transcript.expanduser(), self._writer)
        if opts.record is not None:
            self._recorder = Recorder(opts.record.expanduser(), self._writer)
        self.mic = open_microphone(opts.input if opts.input is not None else settings.input_device)
        self.sink = open_speaker(
            opts.output if opts.output is not None else settings.output_device, self._writer
        )
        track = self.mic.track
        track.on_error = lambda exc: self.fail("microphone", exc)
        if self._recorder is not None:
            track.tap = self._recorder.microphone
        from rtc_voice.audio.tracks import MicrophoneTrack

        if isinstance(track, MicrophoneTrack):
            track.on_silent = self._mic_silent
            track.on_stalled = self._mic_stalled

        self._key = self.api_key.value if self.api_key else None
        if opts.local:
            from rtc_voice.localserver import LocalServer

            self._server = LocalServer()
            await self._server.start()
            self._base_url = self._server.base_url
            self._key = "sk-local-" + secrets.token_hex(8)  # the local server takes any key
        host = urlsplit(self._base_url).hostname or ""
        self._loopback = opts.local or loopback_only(host, settings.ice_servers)
        self._api = RealtimeApi(self._base_url, timeout=settings.connect_timeout)

    async def _mint(self) -> None:
        assert self._api is not None and self._key is not None
        secret = await self._api.create_client_secret(
            self._key, proto.client_secret_request(self.settings)
        )
        self._ephemeral = secret.value
        self.dispatch(st.KeyMinted())

    async def _make_offer(self, result: asyncio.Future[Offer]) -> None:
        from rtc_voice.errors import CallError
        from rtc_voice.rtc.peer import make_offer

        assert self.mic is not None
        settings = self.settings
        try:
            async with asyncio.timeout(settings.connect_timeout):
                offer = await make_offer(
                    self.mic.track,
                    ice_servers=settings.ice_servers,
                    jitter_buffer_frames=settings.jitter_buffer_frames,
                    loopback_only=self._loopback,
                )
        except TimeoutError:
            raise CallError(
                f"The call did not connect within {settings.connect_timeout:g} s: stalled "
                "making the offer.",
                hint="Raise network.connect_timeout if this machine is very slow.",
            ) from None
        result.set_result(offer)

    async def _open_call(self) -> None:
        assert self._api is not None and self._ephemeral is not None
        assert self._offer is not None
        offer = await self._offer
        api, key = self._api, self._key

        async def hangup(call_id: str) -> None:  # a call created but not connected
            if key is not None:  # none with --token
                await api.hangup(key, call_id)

        self.conn = await offer.call(
            api, self._ephemeral, self.settings.connect_timeout, hangup=hangup
        )
        for warning in self.conn.warnings:
            self.presenter.notice(warning, error=True)
        self.dispatch(st.CallOpened())

    def _start_media(self) -> None:
        from rtc_voice.audio.tracks import PcmTrack

        assert self.mic is not None and self.sink is not None
        opts = self.options
        self.sink.start()
        if isinstance(self.mic.track, PcmTrack) and self.mic.file_pcm is not None:
            self.mic.track.on_drained = self._input_drained
        self.mic.start()
        self._send(proto.session_tools(self.tools.definitions()))
        self._spawn("event pump", self._pump_events())
        self._spawn("audio pump", self._pump_audio())
        if opts.max_duration:
            self._spawn("--max-duration timer", self._hang_up_after(opts.max_duration))
        if opts.say:
            self._send_text(opts.say)

    async def _hang_up_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.quit(f"reached --max-duration {seconds:g} s")

    # --- commands from presenters -----------------------------------------------------------

    def send(self, command: Command) -> None:
        match command:
            case HangUp(reason=reason):
                self.quit(reason)
            case ToggleMute():
                if self.mic is not None:
                    self.muted = not self.muted
                    self.mic.track.muted = self.muted
            case Interrupt():
                self._interrupt()
            case SendText(text=text):
                self._send_text(text)
            case PushToTalk():
                self._push_to_talk()

    def _connected(self) -> bool:
        return self.conn is not None and isinstance(self.state, st.Connected)

    def _interrupt(self) -> None:
        if not self._connected():
            return
        if self.conversation.active_response:
            self._send(proto.response_cancel())
        self._send(proto.output_audio_buffer_clear())
        self._flush_playback()

    def _send_text(self, text: str) -> None:
        text = text.strip()
        if not text or not self._connected():
            return
        self._send(proto.user_message(text))
        if self.conversation.active_response:
            self._send(proto.response_cancel())
            self._flush_playback()
        self._send(proto.response_create())

    def _push_to_talk(self) -> None:
        if not self._connected():
            return
        if not self.ptt_active:
            if self.conversation.assistant_speaking:
                self._interrupt()
            self._send(proto.input_audio_buffer_clear())
            self.ptt_active = True
        else:
            self.ptt_active = False
            self._send(proto.input_audio_buffer_commit())
            self._send(proto.response_create())

    # --- events -----------------------------------------------------------------------------

    def _send(self, event: JSON) -> None:
        if self.conn is None or self.conn.closed:
            return
        try:
            self.conn.send(event)
        except RtcVoiceError as exc:
            self.presenter.notice(exc.message, error=True)
            return
        self.log.add(event, "client")
        self.presenter.event(event, "client")

    async def _pump_events(self) -> None:
        from rtc_voice.rtc.peer import ChannelClosed

        assert self.conn is not None
        while True:
            event = await self.conn.events.get()
            if isinstance(event, ChannelClosed):
                self.dispatch(st.ServerClosed())
                return
            if isinstance(event, ev.SpeechStarted) and self.conversation.assistant_speaking:
                self._flush_playback()  # barge-in: stop old audio at once
            self.conversation.apply(event)
            self.log.add(event.raw, "server")
            self.presenter.event(event.raw, "server")
            match event:
                case ev.Error(message=message):
                    if event.session_cap:
                        self.dispatch(st.SessionCapReached())
                    self.presenter.notice(f"server error: {message or None}", error=True)
                case ev.ResponseDone():
                    self._answer_function_calls(event)
            self._publish_turns()

    def _publish_turns(self) -> None:
        finished = self.conversation.newly_final(self._finished_turns)
        if finished:
            self.presenter.turns_finished(finished)
        if self._transcript is not None:
            self._transcript.update(self.conversation)

    def _answer_function_calls(self, event: ev.ResponseDone) -> None:
        calls = [c for c in event.function_calls if c.call_id not in self._answered_calls]
        if not calls:
            return
        self._answered_calls.update(c.call_id for c in calls)
        self._spawn("tools", self._run_tools(calls))

    async def _run_tools(self, calls: list[ev.FunctionCallItem]) -> None:
        """Run the calls of one response concurrently, then hand the outputs back and ask for
        the reply that uses them."""
        outputs = await asyncio.gather(*(self.tools.run(c.name, c.arguments) for c in calls))
        for call, output in zip(calls, outputs, strict=True):
            self._send(proto.function_call_output(call.call_id, output))
        self._send(proto.response_create())

    def _flush_playback(self) -> None:
        if self.sink is not None:
            self.sink.flush()
        if self._recorder is not None:
            self._recorder.flush_assistant()
        self.conversation.interrupt_locally()

    async def _pump_audio(self) -> None:
        from rtc_voice.audio.tracks import receive_pcm

        assert self.conn is not None and self.conn.remote_audio is not None
        await receive_pcm(await self.conn.remote_audio, self._play)

    def _play(self, samples: Pcm) -> None:
        """The assistant's audio, as it arrives: to the speaker and the recording."""
        assert self.sink is not None
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
        description = self.mic.description if self.mic is not None else "microphone"
        self.presenter.notice(
            f"The {description} stopped delivering audio (unplugged?); sending "
            "silence. Type with t, or quit and pick another with --input.",
            error=True,
        )

    def _input_drained(self) -> None:
        if self.settings.turn_detection == "none":
            self._send(proto.input_audio_buffer_commit())
            self._send(proto.response_create())
        self._spawn("input file", self._finish_when_quiet())

    async def _finish_when_quiet(self) -> None:
        """The input file has been sent: leave once its replies are over (bounded)."""
        settle = self.settings.silence_duration_ms / 1000 + 1.0
        deadline = time.monotonic() + INPUT_GRACE_S
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            busy = (
                self.conversation.active_response is not None
                or self.conversation.speaking != "listening"
                or self.conversation.awaiting_transcripts
            )
            now = time.monotonic()
            quiet_since = None if busy else (quiet_since or now)
            if quiet_since is not None and now - quiet_since >= settle:
                self.quit("the input file was sent and answered")
                return
            await asyncio.sleep(0.05)
        self.quit("the input file was sent; stopped waiting for replies")

    # --- leaving ----------------------------------------------------------------------------

    async def _teardown(self, keep: asyncio.Task[None]) -> None:
        """Cancel and await every task but `keep` (the screen), hang up, close, finish files."""
        workers = [t for t in self._tasks if t is not keep and t is not asyncio.current_task()]
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        conn, api = self.conn, self._api
        if self._offer is not None and self._offer.done() and self._offer.result().conn is not conn:
            await self._offer.result().conn.close()  # made, never used: the call ended first
        if conn is not None:
            if conn.call_id and self._key and api is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(3):
                        await api.hangup(self._key, conn.call_id)
            with contextlib.suppress(Exception):
                await conn.close()
        if self.mic is not None:
            self.mic.track.stop()
        if self.sink is not None:
            self.sink.close()
        if self._recorder is not None:
            self._recorder.close()
        if self._transcript is not None:
            if self.conn is not None:
                self._transcript.finish(self.conversation, self.cost_usd)
            else:  # no call, nothing to write: an earlier call's transcript stays as it was
                self._transcript.close()
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.stop()
        if api is not None:
            await api.aclose()

    # --- for presenters ---------------------------------------------------------------------

    @property
    def cost_usd(self) -> float | None:
        return self.conversation.usage.cost(self.prices)

    def snapshot(self) -> CallSnapshot:
        conv, state = self.conversation, self.state
        connected_at = state.since if isinstance(state, st.Connected) else None
        elapsed = self.clock() - (connected_at if connected_at is not None else self._started)
        mic = self.mic.track.level_dbfs if self.mic is not None else -120.0
        return CallSnapshot(
            phase=state.phase,
            model=conv.model or self.settings.model,
            voice=conv.voice or self.settings.voice,
            elapsed_s=elapsed,
            left_s=None if connected_at is None else max(0.0, SESSION_CAP_SECONDS - elapsed),
            turns=conv.snapshot_turns(SNAPSHOT_TURNS),
            log=tuple(self.log.newest(SNAPSHOT_LOG_LINES)),
            mic_dbfs=-120.0 if self.muted else mic,
            speaker_dbfs=self.sink.level_dbfs if self.sink is not None else -120.0,
            muted=self.muted,
            speaking=conv.speaking,
            tokens_in=conv.usage.input_tokens,
            tokens_out=conv.usage.output_tokens,
            cost_usd=self.cost_usd,
            ptt_active=self.ptt_active,
        )
