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
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import urlsplit

from rtc_voice.call import rollover
from rtc_voice.call import state as st
from rtc_voice.call.controls import (
    Approve,
    CallSnapshot,
    Command,
    Controls,
    Decline,
    HangUp,
    Interrupt,
    PushToTalk,
    Question,
    RateLimit,
    SendText,
    ToggleMute,
)
from rtc_voice.call.health import LinkWatch, Lost, Probe
from rtc_voice.call.netstats import HealthSnapshot, NetworkHealth
from rtc_voice.config import Settings
from rtc_voice.conversation import Conversation, Turn
from rtc_voice.credentials import ApiKey
from rtc_voice.errors import AudioError, ExitCode, FileError, RtcVoiceError
from rtc_voice.eventlog import EventLog
from rtc_voice.protocol import ServerEventType as S
from rtc_voice.protocol import client as proto
from rtc_voice.protocol import server as ev
from rtc_voice.protocol.defaults import SESSION_CAP_SECONDS
from rtc_voice.sinks import WriterThread
from rtc_voice.tools import ToolRegistry, default_registry
from rtc_voice.tools.approval import Approvals, Policy
from rtc_voice.tools.calls import ToolCalls, ToolRecord

if TYPE_CHECKING:
    from rtc_voice.api import RealtimeApi
    from rtc_voice.audio.catalog import Device, Kind
    from rtc_voice.audio.devices import OutputSink
    from rtc_voice.audio.echo import EchoPath
    from rtc_voice.audio.io import Microphone, Recorder, Sink
    from rtc_voice.audio.pcm import Pcm
    from rtc_voice.localserver import LocalServer
    from rtc_voice.rtc.peer import Offer, RealtimeConnection
    from rtc_voice.tools.approval import PendingApproval
    from rtc_voice.transcript import TranscriptWriter

JSON = dict[str, Any]
ROLLOVER_MARGIN_S = 1.0  # no new rollover this close to the cap: the cap path takes over
WATCH_INTERVAL_S = 0.1
STATS_INTERVAL_S = 1.0  # how often the link watch is asked (detection within 3 s needs << 1 s)
INPUT_GRACE_S = 30.0  # after a WAV input ends: longest wait for the replies it caused
SNAPSHOT_TURNS = 60
SNAPSHOT_LOG_LINES = 100  # enough to pick older entries in the log
SAY_SETTLE_S = 0.5  # --say: quiet this long after a reply before the next message (or leaving)
SAY_REPLY_WAIT_S = 60.0  # --say: longest wait for one reply
DEVICE_OPEN_WAIT_S = 10.0  # leaving: longest wait for device streams still being opened


class Presenter(Protocol):
    typing_hint: str  # how to type a message in this presenter ("" when it cannot)

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
    say: tuple[str, ...] = ()  # typed in order, each once the reply to the one before is done
    exit_after_reply: bool = False  # hang up once the last --say is answered
    max_duration: float | None = None
    json: bool = False
    approval: Policy = "no"  # tools with approval = "ask": ask on screen, --yes, or decline
    network: str | None = None  # --local: the embedded server's network rehearsal
    drop_after: float | None = None  # --local: it cuts the first call silently after this
    drops: int = 1  # --local with drop_after: how many calls it cuts (benchmarks)
    session_seconds: float | None = None  # --local: the embedded server's session cap


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
        self.tool_calls = ToolCalls(
            self.tools, Approvals(options.approval, settings.approval_timeout)
        )
        self.clock = clock
        self.state: st.State = st.Idle()
        self.conversation = Conversation()
        self.log = EventLog()
        self.failure: RtcVoiceError | None = None  # the first error that ended the call
        self.muted = False
        self.ptt_active = False
        self.mic: Microphone | None = None
        self.sink: Sink | None = None
        self.echo: EchoPath | None = None
        self.conn: RealtimeConnection | None = None
        self._offer: asyncio.Future[Offer] | None = None  # made while the key is minted
        self._in_device: Device | None = None  # the microphone and speaker devices, if any,
        self._out_device: Device | None = None  # named before anything is sent
        self._mic_ready: asyncio.Future[None] | None = None  # the track exists (for the offer)
        self._devices_ready: asyncio.Future[None] | None = None  # streams open: media can start
        self._devices_job: asyncio.Future[None] | None = None  # the thread opening them
        self._far_held: list[Pcm] | None = None  # the assistant's audio, while AEC is set up
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
        self._typed_early: list[str] = []
        self._started = clock()
        # resilience: the current call's own tasks, its link watch, what was replayed into it
        self._call_tasks: list[asyncio.Task[None]] = []
        self.watch: LinkWatch | None = None
        self._replayed: set[str] = set()
        self.reconnects: list[float] = []  # seconds from silence to the new call's channel open
        self._lost_at: float | None = None  # monotonic: when the lost call went silent
        self._lost_reason = ""
        self.rollovers: list[float] = []  # seconds each background open took
        self._leaving_when_quiet = False  # all input sent: the next quiet moment ends the call
        self.detected_at: list[float] = []  # clock(): each time the network was found lost
        self.resumed_at: list[float] = []  # clock(): each reconnect's call up, context sent
        self.switched_at: list[float] = []  # clock(): each rollover's switch
        self.health = NetworkHealth(settings.silence_duration_ms)
        self.network: HealthSnapshot | None = None  # the newest figures, for snapshots
        self._calls_opened = 0
        self.connected_at: float | None = None  # clock(): when the call first connected
        self.ended_at: float | None = None  # clock(): when it began to end

    # --- the state machine ------------------------------------------------------------------

    def dispatch(self, event: st.Input) -> None:
        self.state, effects = st.step(self.state, event, self.clock())
        if isinstance(self.state, st.Connected) and self.connected_at is None:
            self.connected_at = self.state.since
        elif isinstance(self.state, st.Ending | st.Ended | st.Failed) and self.ended_at is None:
            self.ended_at = self.clock()
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
                case st.Reconnect(attempt=attempt, delay=delay):
                    self._spawn("reconnect", self._reconnect(attempt, delay))
                case st.ResumeCall():
                    self._resume_call()
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

    def summary(self) -> str:
        """How long the call was up, its responses, tokens and cost; empty when it never
        connected."""
        if self.connected_at is None:
            return ""
        end = self.ended_at if self.ended_at is not None else self.clock()
        return self.conversation.usage.summary(end - self.connected_at, self.cost_usd)

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
                await asyncio.sleep(0)  # the first frame, before the set-up's slow imports
                self._mic_ready = loop.create_future()
                self._devices_ready = loop.create_future()
                assert ui is not None
                try:
                    await self._prepare()
                except RtcVoiceError as exc:
                    self.fail("set-up", exc)
                else:
                    self.dispatch(st.Start(have_key=self._ephemeral is not None))
                    self._spawn("audio devices", self._open_devices())
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
        """What must fail before anything is sent: files, device names, the key, the embedded
        server and the HTTP client (a missing file or a bad device is the user's input, and
        ends the call before a key is minted). Opening the devices is slower and comes after,
        alongside the key request, the offer and POST /calls (`_open_devices`)."""
        opts, settings = self.options, self.settings
        loop = asyncio.get_running_loop()
        in_spec = opts.input if opts.input is not None else settings.input_device
        out_spec = opts.output if opts.output is not None else settings.output_device
        in_device, out_device = _names_device(in_spec), _names_device(out_spec)

        def resolve() -> None:  # a worker thread: sounddevice's import queries PortAudio
            from rtc_voice.audio.catalog import select

            def pick(spec: str | None, kind: Kind, flag: str | None) -> Device:
                try:
                    return select(spec, kind)
                except AudioError as exc:
                    raise _said_where(exc, settings, kind, flag) from None

            self._in_device = pick(in_spec, "input", opts.input) if in_device else None
            self._out_device = pick(out_spec, "output", opts.output) if out_device else None

        def http_client() -> None:  # a worker thread: httpx's import and its TLS context
            from rtc_voice.api import RealtimeApi

            if not opts.local:  # the embedded server's URL is known once it runs (below)
                self._api = RealtimeApi(self._base_url, timeout=settings.connect_timeout)

        # the HTTP client and PortAudio's device query side by side (PortAudio's C calls
        # release the GIL); the media stack (aiortc, numpy) loads once the key request has
        # gone, unless a file or --record needs it now
        await asyncio.gather(asyncio.to_thread(http_client), asyncio.to_thread(resolve))
        if not (in_device and out_device) or opts.record is not None:
            await asyncio.to_thread(_import_media)  # off the loop: the screen keeps drawing

        def writer_failed(exc: BaseException) -> None:  # called on the writer thread
            loop.call_soon_threadsafe(self.fail, "file writer", exc)

        self._writer = WriterThread(on_error=writer_failed)
        if opts.transcript is not None:
            from rtc_voice.transcript import TranscriptWriter  # only when asked for

            self._transcript = TranscriptWriter(opts.transcript.expanduser(), self._writer)
        if opts.record is not None:
            from rtc_voice.audio.io import Recorder

            self._recorder = Recorder(opts.record.expanduser(), self._writer)
        if not in_device:  # an audio file (read now: a bad one fails first) or none
            from rtc_voice.audio.io import open_microphone

            self.mic = open_microphone(in_spec)
            self._hook_microphone()
        if not out_device:
            from rtc_voice.audio.io import open_speaker

            self.sink = open_speaker(out_spec, self._writer)
        if not (in_device and out_device):  # "on" with a file fails here, before anything
            notice = self._enable_echo(self.mic.track if self.mic is not None else None)
            if notice:
                self.presenter.notice(notice, error=True)

        self._key = self.api_key.value if self.api_key else None
        if opts.local:
            from rtc_voice.localserver import LocalServer
            from rtc_voice.localserver.netem import parse_network

            self._server = LocalServer(
                network=parse_network(opts.network) if opts.network else None,
                drop_after=opts.drop_after,
                drops=opts.drops,
                max_call_seconds=opts.session_seconds or 3600.0,
            )
            await self._server.start()
            self._base_url = self._server.base_url
            self._key = "sk-local-" + secrets.token_hex(8)  # the local server takes any key
            from rtc_voice.api import RealtimeApi

            self._api = RealtimeApi(self._base_url, timeout=settings.connect_timeout)

    def _hook_microphone(self) -> None:
        """The call hears of the microphone's failures, silence and stalls; --record taps it."""
        from rtc_voice.audio.tracks import MicrophoneTrack

        assert self.mic is not None
        track = self.mic.track
        track.on_error = lambda exc: self.fail("microphone", exc)
        if self._recorder is not None:
            track.tap = self._recorder.microphone
        if isinstance(track, MicrophoneTrack):
            track.on_silent = self._mic_silent
            track.on_stalled = self._mic_stalled

    def _enable_echo(self, track: object) -> str | None:
        """Echo cancellation for this call (audio/echo.py): its notice, if it is off."""
        from rtc_voice.audio import echo

        self.echo, notice = echo.enable(
            track,
            self.sink,
            self.settings.echo_cancellation,
            noise_suppression=self.settings.noise_suppression,
        )
        return notice

    async def _open_devices(self) -> None:
        """The devices, while the key request, the offer and POST /calls are under way: the
        microphone track first (the offer needs it, not its stream), then, on a worker thread,
        the microphone and speaker streams. Media starts once both this and the call are done
        (`_start_media`); echo cancellation follows (`_start_echo`). A failure here ends the
        call like any other: its sentence and exit code, and a call already created is hung
        up."""
        assert self._mic_ready is not None and self._devices_ready is not None
        loop = asyncio.get_running_loop()
        if self.mic is None:  # a microphone device: its track now, its stream on the thread
            await asyncio.to_thread(_import_media)
            from rtc_voice.audio.io import device_microphone

            assert self._in_device is not None
            self.mic = device_microphone(self._in_device)
            self._hook_microphone()
        self._mic_ready.set_result(None)
        if self._in_device is not None or self._out_device is not None:
            job = loop.run_in_executor(None, self._open_streams, loop)
            self._devices_job = job
            await asyncio.shield(job)  # cancelled: the teardown waits for the thread
        if self.sink is not None and hasattr(self.sink, "on_stalled"):
            self.sink.on_stalled = self._speaker_stalled
        self._devices_ready.set_result(None)

    def _open_streams(self, loop: asyncio.AbstractEventLoop) -> None:
        """On a worker thread (PortAudio's C calls release the GIL): open the device streams
        (not started). What it opens is kept on `self` at once, so the teardown closes it even
        if a later step fails."""
        from rtc_voice.audio.tracks import MicrophoneTrack

        assert self.mic is not None
        track = self.mic.track
        if isinstance(track, MicrophoneTrack):
            track.source.open()
        if self._out_device is not None:
            from rtc_voice.audio.devices import OutputSink

            self.sink = OutputSink(self._out_device, loop=loop)

    async def _mint(self, *, reconnecting: bool = False) -> None:
        assert self._api is not None and self._key is not None
        secret = await self._api.create_client_secret(
            self._key, proto.client_secret_request(self.settings)
        )
        self._ephemeral = secret.value
        if not reconnecting:
            self.dispatch(st.KeyMinted())

    async def _make_offer(self, result: asyncio.Future[Offer]) -> None:
        assert self._mic_ready is not None
        await self._mic_ready  # the track, made once the media stack is loaded (off the loop)
        from rtc_voice.errors import CallError
        from rtc_voice.rtc.ice import loopback_only
        from rtc_voice.rtc.peer import make_offer

        assert self.mic is not None
        settings = self.settings
        host = urlsplit(self._base_url).hostname or ""
        self._loopback = self.options.local or loopback_only(host, settings.ice_servers)
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

        conn = await offer.call(api, self._ephemeral, self.settings.connect_timeout, hangup=hangup)
        self.conn = conn
        for warning in conn.warnings:
            self.presenter.notice(warning, error=True)
        self.dispatch(st.CallOpened())

    def _start_media(self) -> None:
        self._spawn("media", self._start_media_when_ready())

    async def _start_media_when_ready(self) -> None:
        """The call is up: start the speaker and microphone once the devices are open too,
        then the call's own tasks (events, audio, link watch)."""
        from rtc_voice.audio import echo  # numpy only; livekit loads in _start_echo
        from rtc_voice.audio.tracks import PcmTrack

        assert self._devices_ready is not None
        await self._devices_ready
        assert self.mic is not None and self.sink is not None
        opts = self.options
        # two devices (a file or no output was settled in _prepare)
        echo_wanted = echo.wanted(self.mic.track, self.sink, self.settings.echo_cancellation)
        if echo_wanted:
            self._far_held = []  # nothing the assistant says plays before echo cancellation
        self.sink.start()
        if isinstance(self.mic.track, PcmTrack) and self.mic.file_pcm is not None:
            self.mic.track.on_drained = self._input_drained
        self.mic.start()
        self._start_call_tasks()
        if echo_wanted:
            self._spawn("echo cancellation", self._start_echo())
        self._spawn("network stats", self._read_stats())
        if opts.max_duration:
            self._spawn("--max-duration timer", self._hang_up_after(opts.max_duration))
        if opts.say or self._typed_early:
            self._spawn("--say", self._say_in_order([*self._typed_early, *opts.say]))

    async def _start_echo(self) -> None:
        """Echo cancellation for a call on two devices, once media runs: loading livekit and
        AEC3 costs ~40 ms of CPU that would otherwise come before the call is up. Until it is
        on, the assistant's audio is held (`_play`), so the speaker plays only silence and the
        microphone has no echo to cancel; then what was held plays. "on" and livekit missing
        ends the call with its sentence, as before; "auto" says so and plays without it."""
        from rtc_voice.audio import echo

        assert self.mic is not None and self.sink is not None
        settings = self.settings
        canceller, notice = await asyncio.to_thread(
            echo.make_canceller,
            settings.echo_cancellation,
            noise_suppression=settings.noise_suppression,
        )
        if canceller is not None:
            self.echo = echo.attach(
                self.mic.track,
                cast("OutputSink", self.sink),
                canceller,
                rest_in_silence=not settings.noise_suppression,
            )
        if notice:
            self.presenter.notice(notice, error=True)
        held, self._far_held = self._far_held, None
        for samples in held or ():
            self._play(samples)

    async def _say_in_order(self, messages: Sequence[str]) -> None:
        """Type each --say message once the reply to the one before is over; then, if asked
        (or when no one can type), hang up."""
        leaving = bool(self.options.exit_after_reply and self.options.say)
        for n, text in enumerate(messages, 1):
            self._send_text(text)
            self._leaving_when_quiet = leaving and n == len(messages)
            await self._reply_done(SAY_REPLY_WAIT_S)
        if leaving:
            self.quit("--say was answered" if len(messages) == 1 else "every --say was answered")

    def _busy(self) -> bool:
        conv = self.conversation
        return (
            conv.active_response is not None
            or conv.speaking != "listening"
            or conv.awaiting_transcripts
            or self.tool_calls.busy
        )

    async def _reply_done(self, within: float) -> None:
        """Wait (at most `within` s) for a reply to start and then for the call to go quiet."""
        deadline = time.monotonic() + within
        while not self._busy() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            now = time.monotonic()
            quiet_since = None if self._busy() else (quiet_since or now)
            if quiet_since is not None and now - quiet_since >= SAY_SETTLE_S:
                return
            await asyncio.sleep(0.02)

    def _start_call_tasks(self, audio: asyncio.Task[None] | None = None) -> None:
        """What every call (the first, and each one a reconnect or rollover opens) runs on its
        own. `audio`: its audio pump, when it already runs (a call opened in the background)."""
        assert self.conn is not None
        self._calls_opened += 1
        if self._calls_opened > 1:
            self.health.new_call()
        self._send(proto.session_tools(self.tools.definitions()))
        if audio is None or self.watch is None:
            self.watch = LinkWatch(self.clock())
        if audio is None:
            audio = self._spawn("audio pump", self._pump_audio(self.conn, self.watch))
        tasks = [
            self._spawn("event pump", self._pump_events()),
            audio,
            self._spawn("link watch", self._watch_link(self.conn, self.watch)),
            self._spawn("session rollover", self._roll_over_when_due(self.conn)),
        ]
        self._call_tasks = [t for t in tasks if t is not None]  # none once the call is ending

    async def _read_stats(self) -> None:
        """Every second: the current call's getStats(), as figures for the screen and, with
        --json, an `rtc_voice.stats` line."""
        while True:
            await asyncio.sleep(STATS_INTERVAL_S)
            conn = self.conn
            if conn is None or conn.closed or not isinstance(self.state, st.Connected):
                continue
            try:
                stats = await conn.stats()
            except Exception:  # a peer closing under us: skip this reading
                if conn is self.conn and not conn.closed:
                    raise
                continue
            self.health.reading(stats)
            self.network = self._health_snapshot()
            if self.options.json:
                self.presenter.event({**self.network.as_event(), **self._echo_stats()}, "local")

    def _echo_stats(self) -> dict[str, Any]:
        """For `rtc_voice.stats`: what echo cancellation does ("off", "starting", "cancelling",
        or "resting": the speaker has been silent), the echo it removes while the assistant
        plays, and how long AEC3 has rested in this call."""
        if self.echo is None:
            return {"echo": "starting" if self._far_held is not None else "off"}
        stage = self.echo.stage
        removed = stage.removed_db if stage.far_active else None
        return {
            "echo": "resting" if stage.resting else "cancelling",
            "echo_removed_db": None if removed is None else round(removed, 1),
            "echo_rested_s": round(stage.rested_frames / 100, 1),
        }

    def _health_snapshot(self) -> HealthSnapshot:
        sink = self.sink
        depth = getattr(sink, "depth_ms", None) if sink is not None else None
        return self.health.snapshot(
            underruns=sink.underruns if sink is not None else 0,
            playout_ms=float(depth) if isinstance(depth, int | float) else None,
            reconnects=len(self.reconnects),
            rollovers=len(self.rollovers),
        )

    def _note(self, kind: str, summary: str, **fields: Any) -> None:
        """A line of rtc-voice's own in the event log (and --json): reconnects, turn latency."""
        event = {"type": f"rtc_voice.{kind}", "summary": summary, **fields}
        self.log.add(event, "local")
        self.presenter.event(event, "local")

    # --- rollover: the next session before the cap -------------------------------------------

    async def _roll_over_when_due(self, conn: RealtimeConnection) -> None:
        """Near the session's end, at a quiet moment, move to a new session (see rollover.py).
        If that fails, the cap still ends the old one and the reconnect path recovers. A call
        that only waits to leave (all input sent) does not roll over: the cap, should it come
        first, still ends the session and the reconnect path carries on."""
        opened = self.clock()
        deadline = rollover.session_deadline(conn.session, time.time(), opened)
        start = rollover.rollover_start(deadline, self.settings.rollover_lead_seconds, opened)
        await asyncio.sleep(max(0.0, start - self.clock()))
        while self.clock() < deadline - ROLLOVER_MARGIN_S:
            conv = self.conversation
            if (
                self.conn is conn
                and not self._leaving_when_quiet
                and rollover.quiet(
                    speaking=conv.speaking,
                    reply_running=conv.active_response is not None,
                    awaiting_transcripts=conv.awaiting_transcripts,
                )
            ):
                try:
                    await self._roll_over(conn)
                except RtcVoiceError as exc:
                    self.presenter.notice(
                        f"Could not open the next session before the time limit: {exc.message}",
                        error=True,
                    )
                return
            await asyncio.sleep(0.05)

    async def _roll_over(self, old: RealtimeConnection) -> None:
        from rtc_voice.rtc.peer import make_offer

        assert self._api is not None and self.mic is not None
        began = self.clock()
        settings = self.settings
        async with asyncio.timeout(settings.connect_timeout):
            offer = await make_offer(
                None,  # the microphone moves over at the switch, not before
                ice_servers=settings.ice_servers,
                jitter_buffer_frames=settings.jitter_buffer_frames,
                loopback_only=self._loopback,
            )
        if self._key is not None:
            await self._mint(reconnecting=True)
        assert self._ephemeral is not None
        new = await offer.call(self._api, self._ephemeral, settings.connect_timeout)
        watch = LinkWatch(self.clock())
        audio = self._spawn("audio pump", self._pump_audio(new, watch))
        if audio is None or self.conn is not old or not isinstance(self.state, st.Connected):
            if audio is not None:
                audio.cancel()  # the old call was lost meanwhile: the reconnect path has it
            await new.close()
            return
        # the switch: context first, then microphone and speaker, then the old call goes
        items = self.conversation.replay_items()
        self._replayed = {str(item["id"]) for item in items}
        old_tasks = [t for t in self._call_tasks if t is not asyncio.current_task()]
        old.release_audio()
        new.attach_audio(self.mic.track)
        self.conn, self.watch = new, watch
        self.switched_at.append(self.clock())
        for event in proto.replay(items):
            self._send(event)
        for task in old_tasks:
            task.cancel()
        self._start_call_tasks(audio=audio)
        self.rollovers.append(self.clock() - began)
        self._note(
            "rollover",
            f"moved to a new session ({self.rollovers[-1]:.2f} s in the background); "
            f"{len(items)} items replayed",
            seconds=round(self.rollovers[-1], 3),
            items=len(items),
        )
        self.dispatch(st.RolledOver())
        self._spawn("closing the previous session", self._close_lost(old))

    async def _watch_link(self, conn: RealtimeConnection, watch: LinkWatch) -> None:
        """Ask the link watch a few times a second whether the network is still there."""
        while not conn.closed:
            await asyncio.sleep(WATCH_INTERVAL_S)
            verdict = watch.assess(
                self.clock(),
                ice_state=conn.ice_state,
                connection_state=conn.connection_state,
                reply_running=self.conversation.active_response is not None,
            )
            if isinstance(verdict, Probe):
                watch.probed(self.clock())
                if not conn.closed:
                    with contextlib.suppress(RtcVoiceError):
                        conn.send(proto.liveness_probe())  # answered by session.updated
            elif isinstance(verdict, Lost):
                self._lost_at, self._lost_reason = verdict.silent_since, verdict.reason
                self.detected_at.append(self.clock())
                self.dispatch(st.NetworkLost(verdict.reason, reconnect=self.settings.reconnect))
                return

    # --- a new call for the same conversation -----------------------------------------------

    async def _reconnect(self, attempt: int, delay: float) -> None:
        """Drop the lost call, open the next one (a new key, or --token while it is valid);
        a failure becomes a ReconnectFailed input (the state machine decides on retrying)."""
        from rtc_voice.errors import AuthenticationError, BadRequestError

        if self._lost_at is None:
            self._lost_at = self.clock()  # the session cap: the call ended just now
        await asyncio.sleep(delay)
        current = asyncio.current_task()
        old_tasks = [t for t in self._call_tasks if t is not current]
        self._call_tasks = []
        for task in old_tasks:
            task.cancel()
        await asyncio.gather(*old_tasks, return_exceptions=True)
        old, self.conn = self.conn, None
        self.conversation.connection_lost()
        self._flush_playback()
        self._publish_turns()
        offer: asyncio.Future[Offer] = asyncio.get_running_loop().create_future()
        self._offer = offer
        try:
            steps: list[Coroutine[Any, Any, Any]] = [self._make_offer(offer)]
            if old is not None:
                steps.append(self._close_lost(old))
            if self._key is not None:
                steps.append(self._mint(reconnecting=True))
            await asyncio.gather(*steps)
            await self._open_call()
        except RtcVoiceError as exc:
            retry = not isinstance(exc, AuthenticationError | BadRequestError)
            code = exc.exit_code if exc.exit_code != ExitCode.OK else ExitCode.CALL
            self.dispatch(st.ReconnectFailed(exc.message, code, retry=retry))

    async def _close_lost(self, conn: RealtimeConnection) -> None:
        """Close a call that went silent (bounded: it may never answer); its microphone sender
        stops here, before the next call's starts, and the microphone track is kept."""
        conn.release_audio()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await conn.close()
        if conn.call_id and self._key and self._api is not None:
            api, key, call_id = self._api, self._key, conn.call_id

            async def hang_up() -> None:  # tell the server, if it can still hear us
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(3):
                        await api.hangup(key, call_id)

            self._spawn("hang-up of the lost call", hang_up())

    def _resume_call(self) -> None:
        """The next call is open: replay the conversation into it first, then carry on."""
        assert self.conn is not None
        now = self.clock()
        lost_at = self._lost_at if self._lost_at is not None else now
        gap = now - lost_at
        self.reconnects.append(gap)
        self.resumed_at.append(now)
        reason = self._lost_reason or "the session reached its maximum duration"
        self._lost_at, self._lost_reason = None, ""
        items = self.conversation.replay_items()
        self._replayed = {str(item["id"]) for item in items}
        for event in proto.replay(items):
            self._send(event)
        self._start_call_tasks()
        if self._transcript is not None:
            self._transcript.gap(self.conversation, reason, time.time() - gap, gap)
        self._note(
            "reconnected",
            f"reconnected {gap:.2f} s after the network went quiet ({reason})",
            gap_s=round(gap, 3),
            items=len(items),
        )
        self.presenter.notice(
            f"Reconnected {gap:.1f} s after the connection went quiet; "
            f"{len(items)} conversation item{'s' if len(items) != 1 else ''} replayed."
        )

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
                if self.conn is None and not isinstance(self.state, st.Ending | st.Ended):
                    self._typed_early.append(text)  # typed while connecting: sent once up
                else:
                    self._send_text(text)
            case PushToTalk():
                self._push_to_talk()
            case Approve(id=id):
                self.tool_calls.approvals.answer(id, True)
            case Decline(id=id):
                self.tool_calls.approvals.answer(id, False)

    def _connected(self) -> bool:
        return self.conn is not None and isinstance(self.state, st.Connected)

    def _interrupt(self) -> None:
        self.tool_calls.interrupt()
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

        assert self.conn is not None and self.watch is not None
        conn, watch = self.conn, self.watch
        while True:
            event = await conn.events.get()
            if isinstance(event, ChannelClosed):
                self.dispatch(st.ServerClosed(reconnect=self.settings.reconnect))
                return
            watch.event(self.clock())
            if (
                isinstance(event, ev.SpeechStopped)
                and event.type == S.INPUT_AUDIO_BUFFER_SPEECH_STOPPED
            ):
                self.health.speech_stopped(self.clock())
            elif isinstance(event, ev.SpeechStarted):
                self.health.turn_cancelled()
            if isinstance(event, ev.SpeechStarted) and self.conversation.assistant_speaking:
                self._flush_playback()  # barge-in: stop old audio at once
            if isinstance(event, ev.ItemChanged) and event.item.get("id") in self._replayed:
                self.log.add(event.raw, "server")  # our replayed context coming back: shown,
                self.presenter.event(event.raw, "server")  # but the turns are already here
                continue
            self.conversation.apply(event)
            if isinstance(event, ev.OutputAudioStarted | ev.OutputAudioStopped):
                watch.assistant_speaking(self.conversation.assistant_speaking)
            self.log.add(event.raw, "server")
            self.presenter.event(event.raw, "server")
            match event:
                case ev.Error(message=message):
                    if event.session_cap:
                        self.dispatch(st.SessionCapReached())
                    self.presenter.notice(f"server error: {message or None}", error=True)
                case ev.ResponseDone():
                    self._answer_function_calls(event)
                    self._answer_mcp_approvals(event)
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

    def _answer_mcp_approvals(self, event: ev.ResponseDone) -> None:
        for item in event.output:
            request = str(item.get("id") or "")
            if item.get("type") != "mcp_approval_request" or request in self._answered_calls:
                continue
            self._answered_calls.add(request)
            self._spawn(
                "tools",
                self._mcp_approval(
                    request,
                    str(item.get("name") or ""),
                    str(item.get("arguments") or ""),
                    str(item.get("server_label") or ""),
                ),
            )

    async def _mcp_approval(self, request: str, name: str, arguments: str, label: str) -> None:
        """OpenAI's side asks before it calls an MCP tool: the same y / n as our own tools."""
        from rtc_voice.tools.approval import declined_message

        decision = await self.tool_calls.approvals.decide(request, name, arguments, server=label)
        reason = None if decision.approved else declined_message(f"{label}.{name}", decision)
        self.conversation.record_mcp_decision(
            request, decision.by, json.dumps({"error": reason}) if reason else "approved"
        )
        self._publish_turns()
        self._send(proto.mcp_approval_response(request, decision.approved, reason))
        if decision.by == "no terminal":
            self.presenter.notice(
                f"Declined the MCP tool {label}.{name}: it asks for approval and there is no "
                "terminal to ask on (run with --yes to allow it).",
                error=True,
            )
        if decision.by != "interrupted":
            self._send(proto.response_create())

    async def _run_tools(self, calls: list[ev.FunctionCallItem]) -> None:
        """Run the calls of one response concurrently, then hand the outputs back and ask for
        the reply that uses them."""
        records = await self.tool_calls.run_all((c.call_id, c.name, c.arguments) for c in calls)
        for record in records:
            self._tool_done(record)
            self._send(proto.function_call_output(record.call_id, record.output))
        if not any(r.interrupted for r in records):
            self._send(proto.response_create())

    def _tool_done(self, record: ToolRecord) -> None:
        self.conversation.record_tool(
            record.call_id, record.duration_s, record.approved_by, record.output
        )
        if not record.ran and record.approved_by == "no terminal":
            self.presenter.notice(
                f"Declined the tool {record.name}: it asks for approval and there is no "
                "terminal to ask on (run with --yes to allow it).",
                error=True,
            )

    def _flush_playback(self) -> None:
        if self._far_held is not None:
            self._far_held.clear()
        if self.sink is not None:
            self.sink.flush()
        if self._recorder is not None:
            self._recorder.flush_assistant()
        self.conversation.interrupt_locally()

    async def _pump_audio(self, conn: RealtimeConnection, watch: LinkWatch) -> None:
        """`conn`'s audio to the speaker while it is the current call (a call opened in the
        background is drained unheard until the switch, so no backlog builds up)."""
        from rtc_voice.audio.tracks import receive_pcm

        assert conn.remote_audio is not None

        def play(samples: Pcm) -> None:
            watch.audio(self.clock())
            if self.conn is conn:
                self._play(samples)

        await receive_pcm(await conn.remote_audio, play)

    def _play(self, samples: Pcm) -> None:
        """The assistant's audio, as it arrives: to the speaker and the recording (held while
        echo cancellation is being set up: `_start_echo`)."""
        if self._far_held is not None:
            self._far_held.append(samples)
            return
        assert self.sink is not None
        self.sink.write(samples)
        if self.health.awaiting_reply:
            depth = getattr(self.sink, "depth_ms", None)
            latency = self.health.reply_audio(
                self.clock(),
                self.sink.level_dbfs,
                float(depth) if isinstance(depth, int | float) else None,
            )
            if latency is not None:
                self._note("turn", f"turn latency {latency:.0f} ms", latency_ms=round(latency))
        if self._recorder is not None:
            self._recorder.assistant(samples)

    def _mic_silent(self) -> None:
        """A warning, not an error: the call goes on (a quiet room or a muted headset is not
        a failure), and it is said once per stretch of silence (SilenceWatch)."""
        self.presenter.notice(
            "Warning: the microphone has delivered only silence for 4 s: check the input "
            "device (`rtc-voice devices`) and that this terminal may use the microphone."
        )

    def _mic_stalled(self) -> None:
        description = self.mic.description if self.mic is not None else "microphone"
        self.presenter.notice(
            f"The {description} stopped delivering audio (unplugged?); sending "
            f"silence. {self.presenter.typing_hint or 'Quit'}, or quit and pick another with "
            "--input.",
            error=True,
        )

    def _speaker_stalled(self) -> None:
        description = self.sink.description if self.sink is not None else "speaker"
        self.presenter.notice(
            f"The {description} stopped playing audio (unplugged?). Type with t, or quit and "
            "pick another with --output.",
            error=True,
        )

    def _input_drained(self) -> None:
        if self.settings.turn_detection == "none":
            self._send(proto.input_audio_buffer_commit())
            self._send(proto.response_create())
        self._spawn("input file", self._finish_when_quiet())

    async def _finish_when_quiet(self) -> None:
        """The input file has been sent: leave once its replies are over (bounded)."""
        self._leaving_when_quiet = True
        settle = self.settings.silence_duration_ms / 1000 + 1.0
        deadline = time.monotonic() + INPUT_GRACE_S
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            busy = self._busy()
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
        if self._devices_job is not None:  # a stream still opening is closed below, once open
            await asyncio.wait([self._devices_job], timeout=DEVICE_OPEN_WAIT_S)
        conn, api = self.conn, self._api
        if self._offer is not None and self._offer.done() and self._offer.result().conn is not conn:
            await self._offer.result().conn.close()  # made, never used: the call ended first
        if conn is not None:
            key = self._key or self._ephemeral  # --token: hang up with the ek_ key
            if conn.call_id and key and api is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(3):
                        await api.hangup(key, conn.call_id)
            with contextlib.suppress(Exception):
                await conn.close()
        if self.mic is not None:
            self.mic.track.stop()
        if self.sink is not None:
            self.sink.close()
        if self._recorder is not None:
            self._recorder.close()
        if self._transcript is not None:
            if self.conn is not None or self._calls_opened:  # a call was up at some point
                self._transcript.finish(
                    self.conversation,
                    self.cost_usd,
                    network=self.health.summary(
                        underruns=self.sink.underruns if self.sink is not None else 0,
                        reconnects=len(self.reconnects),
                        rollovers=len(self.rollovers),
                    ),
                )
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
        pending = self.tool_calls.approvals.pending()
        conv, state = self.conversation, self.state
        connected_at = state.since if isinstance(state, st.Connected) else None
        elapsed = self.clock() - (connected_at if connected_at is not None else self._started)
        left: float | None = None
        if connected_at is not None:  # the sooner of the session cap and --max-duration
            limit = min(SESSION_CAP_SECONDS, self.options.max_duration or SESSION_CAP_SECONDS)
            left = max(0.0, limit - elapsed)
        mic = self.mic.track.level_dbfs if self.mic is not None else -120.0
        return CallSnapshot(
            phase=state.phase,
            model=conv.model or self.settings.model,
            voice=conv.voice or self.settings.voice,
            elapsed_s=elapsed,
            left_s=left,
            turns=conv.snapshot_turns(SNAPSHOT_TURNS),
            log=tuple(self.log.newest(SNAPSHOT_LOG_LINES)),
            mic_dbfs=-120.0 if self.muted else mic,
            microphone=not (self.mic is not None and self.mic.absent),
            speaker_dbfs=self.sink.level_dbfs if self.sink is not None else -120.0,
            speaker=not getattr(self.sink, "absent", False),
            muted=self.muted,
            speaking=conv.speaking,
            tokens_in=conv.usage.input_tokens,
            tokens_out=conv.usage.output_tokens,
            cost_usd=self.cost_usd,
            ptt_active=self.ptt_active,
            echo_cancelling=self.echo is not None,
            echo_removed_db=(
                self.echo.stage.removed_db
                if self.echo is not None and self.echo.stage.far_active
                else None
            ),
            rate_limits=_rate_limits(conv.rate_limits),
            approval=pending,
            question=None if pending is None else _approval_question(pending, self.clock()),
            network=self.network,
        )


def _rate_limits(limits: Sequence[Mapping[str, Any]]) -> tuple[RateLimit, ...]:
    return tuple(
        RateLimit(str(r.get("name") or "?"), int(r.get("remaining") or 0), int(r.get("limit") or 0))
        for r in limits
    )


def _names_device(spec: str | None) -> bool:
    """An --input/--output value naming a device (not `none`, not an audio file)."""
    from rtc_voice.paths import is_file_spec

    return not (spec is not None and spec.strip().lower() == "none") and not is_file_spec(spec)


BLAS_THREADS_ENV = "OPENBLAS_NUM_THREADS"


def _import_media() -> None:
    """Load the media stack (aiortc, av, numpy, sounddevice, httpx): about a second on a slow
    machine, so it runs on a thread while the screen is already up.

    numpy loads OpenBLAS, which starts a thread per core that spins while numpy loads (on two
    cores: 60-100 ms of CPU taken from connecting, and the PortAudio query). rtc-voice does no
    matrix algebra, so numpy loads with one BLAS thread unless the user set their own count;
    the variable is read only when the library loads, and is removed again at once so tool
    commands and other children inherit the user's environment unchanged."""
    ours = BLAS_THREADS_ENV not in os.environ and "numpy" not in sys.modules
    if ours:
        os.environ[BLAS_THREADS_ENV] = "1"
    try:
        import numpy  # noqa: F401
    finally:
        if ours:
            os.environ.pop(BLAS_THREADS_ENV, None)
    import rtc_voice.api
    import rtc_voice.audio.io
    import rtc_voice.audio.tracks
    import rtc_voice.rtc.peer  # noqa: F401


def _approval_question(pending: PendingApproval, now: float) -> Question:
    """A tool call waiting for y / n, as the screen's standing question."""
    where = f" on {pending.server}" if pending.server else ""
    return Question(
        f"Run tool {pending.name}{where} {pending.arguments}?  ({pending.left_s(now):.0f} s left)",
        (("y", "yes", Approve(pending.id)), ("n", "no", Decline(pending.id))),
    )


def _said_where(exc: AudioError, settings: Settings, kind: str, flag: str | None) -> AudioError:
    """A device named by the config file or the environment, not on this command line: the
    error says where the name came from, or the user looks for it in vain."""
    source = settings.source_of(f"{kind}_device")
    if flag is not None or source.kind not in ("file", "env"):
        return exc
    where = f"audio.{kind}_device in {source.detail}" if source.kind == "file" else source.detail
    hint = f"{exc.hint} " if exc.hint else ""
    return type(exc)(
        exc.message.removesuffix(".") + f" (set by {where}).",
        hint=f"{hint}Fix {where}, or pick one for this call with --{kind}.",
    )
