"""call/state.py as a table: every state x every input, with the state and effects that follow."""

from __future__ import annotations

from typing import Any

import pytest

from rtc_voice.call import state as st
from rtc_voice.errors import ExitCode

NOW = 50.0
QUIT = st.Quit("you hung up", ExitCode.OK)
CTRL_C = st.Quit("interrupted (Ctrl-C)", ExitCode.INTERRUPTED)
BROKEN = st.TaskFailed("Internal error in the screen: RuntimeError: boom", ExitCode.FAILURE)

INPUTS: dict[str, st.Input] = {
    "start": st.Start(have_key=False),
    "start with key": st.Start(have_key=True),
    "key minted": st.KeyMinted(),
    "call opened": st.CallOpened(),
    "cap reached": st.SessionCapReached(),
    "server closed": st.ServerClosed(),
    "network lost": st.NetworkLost(),
    "quit": QUIT,
    "ctrl-c": CTRL_C,
    "task failed": BROKEN,
    "torn down": st.TornDown(),
}
STATES: dict[str, st.State] = {
    "idle": st.Idle(),
    "minting": st.Minting(),
    "connecting": st.Connecting(),
    "connected": st.Connected(since=10.0),
    "connected, cap reached": st.Connected(since=10.0, cap_reached=True),
    "reconnecting": st.Reconnecting(since=40.0),
    "ending": st.Ending("you hung up", ExitCode.OK),
    "ended": st.Ended("you hung up", ExitCode.OK),
    "failed": st.Failed("the server ended the call", ExitCode.CALL),
}

SAME = object()  # the state stays and nothing happens
TEAR = [st.TearDown()]
QUITTING = (st.Ending("you hung up", ExitCode.OK), TEAR)
INTERRUPTED = (st.Ending("interrupted (Ctrl-C)", ExitCode.INTERRUPTED), TEAR)
FAILING = (st.Ending(BROKEN.message, ExitCode.FAILURE), TEAR)
OPENED = (st.Connected(since=NOW), [st.StartMedia()])
SERVER_ENDED = (st.Ending(st.SERVER_CLOSED_REASON, ExitCode.CALL), TEAR)
LOST = (st.Ending(st.NETWORK_LOST_REASON, ExitCode.CALL), TEAR)
LIVE_ENDINGS = {"quit": QUITTING, "ctrl-c": INTERRUPTED, "task failed": FAILING}

EXPECTED: dict[str, dict[str, Any]] = {
    "idle": {
        "start": (st.Minting(), [st.MakeOffer(), st.MintKey()]),
        "start with key": (st.Connecting(), [st.MakeOffer(), st.OpenCall()]),
        **LIVE_ENDINGS,
    },
    "minting": {"key minted": (st.Connecting(), [st.OpenCall()]), **LIVE_ENDINGS},
    "connecting": {"call opened": OPENED, **LIVE_ENDINGS},
    "connected": {
        "cap reached": (st.Connected(since=10.0, cap_reached=True), []),
        "server closed": SERVER_ENDED,
        "network lost": LOST,  # the reconnect feature will turn this into Reconnecting
        **LIVE_ENDINGS,
    },
    "connected, cap reached": {
        "cap reached": (st.Connected(since=10.0, cap_reached=True), []),
        "server closed": (st.Ending(st.SESSION_CAP_REASON, ExitCode.OK), TEAR),
        "network lost": LOST,
        **LIVE_ENDINGS,
    },
    "reconnecting": {"call opened": OPENED, **LIVE_ENDINGS},
    "ending": {
        "task failed": (SAME, [st.Notify(BROKEN.message, error=True)]),
        "torn down": (st.Ended("you hung up", ExitCode.OK), []),
    },
    "ended": {},
    "failed": {},
}


@pytest.mark.parametrize("input_name", list(INPUTS))
@pytest.mark.parametrize("state_name", list(STATES))
def test_every_state_and_input(state_name: str, input_name: str) -> None:
    state, event = STATES[state_name], INPUTS[input_name]
    expected_state, expected_effects = EXPECTED[state_name].get(input_name, (SAME, []))
    if expected_state is SAME:
        expected_state = state
    assert st.step(state, event, NOW) == (expected_state, expected_effects)


def test_the_table_covers_only_real_states_and_inputs() -> None:
    assert set(EXPECTED) == set(STATES)
    for row in EXPECTED.values():
        assert set(row) <= set(INPUTS)
    assert {type(s) for s in STATES.values()} == set(st.State.__args__)  # type: ignore[attr-defined]
    assert {type(i) for i in INPUTS.values()} == set(st.Input.__args__)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("code", "final"),
    [
        (ExitCode.OK, st.Ended),
        (ExitCode.INTERRUPTED, st.Ended),
        (ExitCode.TERMINATED, st.Ended),
        (ExitCode.CALL, st.Failed),
        (ExitCode.NETWORK, st.Failed),
        (ExitCode.FAILURE, st.Failed),
    ],
)
def test_leaving_ends_or_fails_by_exit_code(code: ExitCode, final: type) -> None:
    state, effects = st.step(st.Ending("why", code), st.TornDown(), NOW)
    assert state == final("why", code) and effects == []


def test_a_whole_call_in_order() -> None:
    state: st.State = st.Idle()
    effects: list[st.Effect] = []
    for event, at in (
        (st.Start(have_key=False), 0.0),
        (st.KeyMinted(), 0.3),
        (st.CallOpened(), 0.9),
        (st.SessionCapReached(), 3600.0),
        (st.ServerClosed(), 3600.2),
        (QUIT, 3600.3),  # too late: the first reason wins
        (st.TornDown(), 3600.5),
    ):
        state, new = st.step(state, event, at)
        effects += new
    assert state == st.Ended(st.SESSION_CAP_REASON, ExitCode.OK)
    assert effects == [
        st.MakeOffer(),
        st.MintKey(),
        st.OpenCall(),
        st.StartMedia(),
        st.TearDown(),
    ]
    assert state.phase == "ended"
