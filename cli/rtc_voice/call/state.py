"""Pure: the life of one call as a state machine.

`step(state, input, now)` returns the next state and the effects to carry out; it does no I/O
and reads no clock (`now` is monotonic seconds from the caller). `supervisor.py` carries the
effects out and turns what happens (a key arrives, the channel closes, a task fails) into inputs.

    Idle ─Start─▶ Minting ─KeyMinted─▶ Connecting ─CallOpened─▶ Connected
      (Start with a key of the user's own goes straight to Connecting; either way the offer
      is made at Start, alongside the key request)
    Connected ─ServerClosed / NetworkLost─▶ Ending      (Reconnecting: the next step builds it)
    any live state ─Quit / TaskFailed─▶ Ending ─TornDown─▶ Ended | Failed
"""

from __future__ import annotations

from dataclasses import dataclass

from rtc_voice.errors import ExitCode

# --- states ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Idle:
    phase = "starting"


@dataclass(frozen=True)
class Minting:
    phase = "minting"


@dataclass(frozen=True)
class Connecting:
    phase = "connecting"


@dataclass(frozen=True)
class Connected:
    since: float  # monotonic seconds
    cap_reached: bool = False  # the server said the session hit its maximum duration
    phase = "connected"


@dataclass(frozen=True)
class Reconnecting:
    """A lost call being replaced by a new one (entered by the reconnect feature; today the
    machine only defines how it leaves)."""

    since: float
    phase = "reconnecting"


@dataclass(frozen=True)
class Ending:
    reason: str
    code: ExitCode
    phase = "ending"


@dataclass(frozen=True)
class Ended:
    """Over, as the user or the server wanted (exit 0, or 130/143 for signals)."""

    reason: str
    code: ExitCode
    phase = "ended"


@dataclass(frozen=True)
class Failed:
    """Over because something went wrong (a non-zero exit code other than a signal's)."""

    reason: str
    code: ExitCode
    phase = "ended"


State = Idle | Minting | Connecting | Connected | Reconnecting | Ending | Ended | Failed
LIVE = (Idle, Minting, Connecting, Connected, Reconnecting)  # states a Quit or failure ends


# --- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    have_key: bool  # an ephemeral key was given (--token): no minting


@dataclass(frozen=True)
class KeyMinted:
    pass


@dataclass(frozen=True)
class CallOpened:
    pass


@dataclass(frozen=True)
class SessionCapReached:
    pass


@dataclass(frozen=True)
class ServerClosed:
    """The events channel closed."""


@dataclass(frozen=True)
class NetworkLost:
    """Media and events stopped arriving (detected by the caller)."""


@dataclass(frozen=True)
class Quit:
    reason: str
    code: ExitCode = ExitCode.OK


@dataclass(frozen=True)
class TaskFailed:
    message: str
    code: ExitCode


@dataclass(frozen=True)
class TornDown:
    pass


Input = (
    Start
    | KeyMinted
    | CallOpened
    | SessionCapReached
    | ServerClosed
    | NetworkLost
    | Quit
    | TaskFailed
    | TornDown
)


# --- effects -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MakeOffer:
    """Create the peer, its offer and candidates (while the key request is in flight)."""


@dataclass(frozen=True)
class MintKey:
    pass


@dataclass(frozen=True)
class OpenCall:
    pass


@dataclass(frozen=True)
class StartMedia:
    pass


@dataclass(frozen=True)
class Notify:
    text: str
    error: bool = False


@dataclass(frozen=True)
class TearDown:
    pass


Effect = MakeOffer | MintKey | OpenCall | StartMedia | Notify | TearDown

SESSION_CAP_REASON = "the session reached its maximum duration"
SERVER_CLOSED_REASON = "the server ended the call"
NETWORK_LOST_REASON = "the connection to the server was lost"
CLEAN_EXITS = (ExitCode.OK, ExitCode.INTERRUPTED, ExitCode.TERMINATED)


def _end(reason: str, code: ExitCode) -> tuple[State, list[Effect]]:
    return Ending(reason, code), [TearDown()]


def step(state: State, event: Input, now: float) -> tuple[State, list[Effect]]:
    """The next state and the effects to carry out, for `event` arriving in `state` at `now`."""
    if isinstance(state, Ended | Failed):
        return state, []
    if isinstance(state, Ending):
        if isinstance(event, TornDown):
            final = Ended if state.code in CLEAN_EXITS else Failed
            return final(state.reason, state.code), []
        if isinstance(event, TaskFailed):  # a second failure while leaving: say it, keep going
            return state, [Notify(event.message, error=True)]
        return state, []
    match event:
        case Quit(reason=reason, code=code):
            return _end(reason, code)
        case TaskFailed(message=message, code=code):
            return _end(message, code)  # the CLI prints the sentence once, with its hint
    match state, event:
        case Idle(), Start(have_key=False):
            return Minting(), [MakeOffer(), MintKey()]
        case Idle(), Start(have_key=True):
            return Connecting(), [MakeOffer(), OpenCall()]
        case Minting(), KeyMinted():
            return Connecting(), [OpenCall()]
        case Connecting() | Reconnecting(), CallOpened():
            return Connected(since=now), [StartMedia()]
        case Connected(), SessionCapReached():
            return Connected(since=state.since, cap_reached=True), []
        case Connected(cap_reached=True), ServerClosed():
            return _end(SESSION_CAP_REASON, ExitCode.OK)
        case Connected(), ServerClosed():
            return _end(SERVER_CLOSED_REASON, ExitCode.CALL)
        case Connected(), NetworkLost():
            return _end(NETWORK_LOST_REASON, ExitCode.CALL)
    return state, []  # nothing to do: the input does not apply in this state
