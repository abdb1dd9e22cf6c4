"""Playout-depth control (audio/playout.py) on synthetic arrival patterns.

A small simulator plays the part of OutputSink and its PortAudio callback: chunks arrive at
given times and go through the controller into a FIFO; a 10 ms callback drains it, priming at
30 ms and counting an underrun when it runs dry mid-stream, as the real sink does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from rtc_voice.audio.pcm import FRAME_SAMPLES, RATE, silence, tone
from rtc_voice.audio.playout import PlayoutConfig, PlayoutController

pytestmark = pytest.mark.timeout(30)

BLOCK = RATE // 100  # the speaker callback's 10 ms
PRIME = RATE * 30 // 1000
FRAME_S = FRAME_SAMPLES / RATE


@dataclass
class Played:
    times: list[float]  # of each write
    depth_ms: list[float]  # queued right after each write
    underruns: int
    audio: np.ndarray  # what the speaker played
    controller: PlayoutController | None

    def depth_between(self, start: float, end: float) -> np.ndarray:
        pairs = zip(self.times, self.depth_ms, strict=True)
        return np.array([d for t, d in pairs if start <= t < end])


def arrivals(count: int, jitter_ms: float = 0.0, seed: int = 1, start: float = 0.0) -> list[float]:
    """Each 20 ms frame sent on time, delayed by uniform 0..jitter_ms, delivered in order."""
    rng = np.random.default_rng(seed)
    out: list[float] = []
    for i in range(count):
        t = start + i * FRAME_S + rng.uniform(0, jitter_ms / 1000)
        out.append(max(t, out[-1]) if out else t)
    return out


def play(
    times: list[float],
    signal: np.ndarray,
    controller: PlayoutController | None,
    *,
    stall: tuple[float, float] | None = None,
    limit_ms: int | None = None,
) -> Played:
    """Feed `signal` in 20 ms chunks at `times` through `controller` into a simulated speaker.
    `stall`: no callbacks from..to (they resume on time after); `limit_ms`: the sink's hard
    trim of the oldest audio past that depth, reported to the controller."""
    chunks = [signal[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES] for i in range(len(times))]
    queue = np.zeros(0, np.int16)
    played: list[np.ndarray] = []
    depths: list[float] = []
    when: list[float] = []
    primed = starved = False
    underruns = 0
    callback = 0.0
    for t, chunk in zip(times, chunks, strict=True):
        while callback <= t:  # the callbacks due before this arrival
            if stall is not None and stall[0] <= callback < stall[1]:
                callback = stall[1]
                continue
            if not primed and len(queue) >= PRIME:
                primed = True
            if primed:
                got = queue[:BLOCK]
                queue = queue[BLOCK:]
                played.append(got)
                if len(got) < BLOCK:
                    starved, primed = True, False
            callback += BLOCK / RATE
        if controller is not None:
            chunk = controller.process(t, len(queue), chunk)
        if starved:
            underruns += 1
            starved = False
        queue = np.concatenate([queue, chunk])
        if limit_ms is not None and len(queue) > RATE * limit_ms // 1000:
            cut = len(queue) - RATE * limit_ms // 1000
            queue = queue[cut:]
            if controller is not None:
                controller.note_removed(cut)
        depths.append(len(queue) * 1000 / RATE)
        when.append(t)
    played.append(queue)
    return Played(when, depths, underruns, np.concatenate(played), controller)


def test_a_pile_up_at_the_start_comes_down_to_the_floor_and_stays() -> None:
    # the device started late: 200 ms arrive at once, then frames come on time
    times = [max(0.2, t) for t in arrivals(400)]
    signal = np.zeros(400 * FRAME_SAMPLES, np.int16)
    before = play(times, signal, None)
    after = play(times, signal, PlayoutController(RATE))
    assert before.depth_between(6, 8).min() >= 180  # without control it never comes down
    late = after.depth_between(3.5, 8)
    assert late.max() <= 10 + 20 + 10  # floor + one frame + one callback block
    assert after.underruns == 0 and before.underruns == 0


def test_one_hiccup_is_taken_out_again() -> None:
    # a busy machine stalls delivery for 150 ms at t = 3 s, then the backlog arrives at once
    times = [t if not 3.0 <= t < 3.15 else 3.15 for t in arrivals(500)]
    signal = np.zeros(500 * FRAME_SAMPLES, np.int16)
    before = play(times, signal, None)
    after = play(times, signal, PlayoutController(RATE))
    steady = after.depth_between(2, 3).max()
    assert before.depth_between(8, 10).min() >= 100  # the hiccup's latency stays for good
    assert after.depth_between(6, 10).max() <= steady + 1
    assert after.underruns == before.underruns == 1  # the stall itself, nothing more


def test_after_a_short_hiccup_the_depth_is_back_within_a_second() -> None:
    # a busy machine stalls delivery for 60 ms at t = 3 s (the speaker runs dry), then the
    # backlog arrives at once and frames come on time again
    times = [t if not 3.0 <= t < 3.06 else 3.06 for t in arrivals(300)]
    signal = np.zeros(300 * FRAME_SAMPLES, np.int16)
    result = play(times, signal, PlayoutController(RATE))
    steady = result.depth_between(2, 3).max()
    assert result.depth_between(3.06, 3.3).max() >= steady + 30  # the hiccup raised it
    # back where it was 50 frames later, not only once the hiccup has left the 2 s window
    assert result.depth_between(4.1, 6).max() <= steady + 1
    assert result.underruns == 1  # the stall itself, nothing more


def test_steady_jitter_keeps_its_buffer_while_old_lows_fade() -> None:
    # 30 ms jitter: fresh lows keep coming, so fading the old ones sheds almost nothing
    count = 1500
    signal = np.zeros(count * FRAME_SAMPLES, np.int16)
    times = arrivals(count, jitter_ms=30, seed=9)
    result = play(times, signal, PlayoutController(RATE))
    assert result.underruns < 0.01 * count


def test_30_ms_jitter_few_underruns_and_no_creep() -> None:
    count = 1500  # 30 s
    times = arrivals(count, jitter_ms=30, seed=7)
    burst = np.concatenate([tone(220, 900, dbfs=-18), silence(300)])
    signal = np.tile(burst, count // 60 + 1)[: count * FRAME_SAMPLES]
    result = play(times, signal, PlayoutController(RATE))
    assert result.underruns < 0.01 * count
    middle, end = result.depth_between(5, 15), result.depth_between(20, 30)
    assert np.median(end) <= np.median(middle) + 5  # latency does not creep
    assert np.percentile(end, 95) <= 10 + 30 + 20 + 10 + 5  # floor + jitter + frame + block


def test_jitter_estimate_and_target_follow_the_arrivals() -> None:
    steady = PlayoutController(RATE)
    play(arrivals(200), np.zeros(200 * FRAME_SAMPLES, np.int16), steady)
    assert steady.jitter_ms == pytest.approx(0, abs=0.5)
    assert steady.target_ms == pytest.approx(10, abs=0.5)
    jittery = PlayoutController(RATE)
    play(arrivals(200, jitter_ms=30, seed=3), np.zeros(200 * FRAME_SAMPLES, np.int16), jittery)
    assert 20 <= jittery.jitter_ms <= 30.5
    assert jittery.target_ms == pytest.approx(10 + jittery.jitter_ms)


def test_continuous_sound_is_spliced_without_clicks() -> None:
    count = 300
    times = [max(0.15, t) for t in arrivals(count)]
    t = np.arange(count * FRAME_SAMPLES) / RATE
    wave = 6000 * np.sin(2 * np.pi * 220 * t) + 4000 * np.sin(2 * np.pi * 330 * t)
    signal = wave.astype(np.int16)
    result = play(times, signal, PlayoutController(RATE))
    controller = result.controller
    assert controller is not None and controller.splices > 0 and controller.shed_quiet == 0
    assert result.depth_between(4, 6).max() <= 40
    assert result.underruns == 0
    # a click is a step the signal itself never makes
    steps = np.abs(np.diff(result.audio.astype(np.int32)))
    assert steps.max() <= 1.1 * np.abs(np.diff(signal.astype(np.int32))).max()
    spectrum = np.abs(np.fft.rfft(result.audio.astype(np.float64)))
    freqs = np.fft.rfftfreq(len(result.audio), 1 / RATE)
    assert spectrum[freqs > 2000].sum() < 0.01 * spectrum.sum()


def test_quiet_chunks_are_shed_before_sound_is_touched() -> None:
    count = 400
    times = [max(0.12, t) for t in arrivals(count)]
    phrase = np.concatenate([tone(300, 400, dbfs=-15), silence(200)])
    signal = np.tile(phrase, count // 30 + 1)[: count * FRAME_SAMPLES]
    result = play(times, signal, PlayoutController(RATE))
    controller = result.controller
    assert controller is not None
    assert controller.shed_quiet >= RATE * 0.08 and controller.splices == 0
    assert result.depth_between(5, 8).max() <= 40


def test_reset_and_gaps_start_the_measurement_afresh() -> None:
    controller = PlayoutController(RATE, PlayoutConfig(settle_s=0.5))
    chunk = np.zeros(FRAME_SAMPLES, np.int16)
    for i in range(60):  # 1.2 s with 100 ms queued, less what it sheds: all but 10 ms excess
        controller.process(i * FRAME_S, RATE // 10 - controller.shed, chunk)
    assert controller.shed > 0
    controller.reset()
    assert controller.excess() == 0 and controller.jitter_ms == 0
    kept = controller.process(2.0, RATE // 10, chunk)
    assert len(kept) == FRAME_SAMPLES  # settling again: nothing is shed
    shed = controller.shed
    for i in range(60):
        controller.process(2.02 + i * FRAME_S, RATE // 10, chunk)
    assert controller.shed > shed
    controller.process(5.0, RATE // 10, chunk)  # a 1.8 s gap: a new stream
    assert controller.excess() == 0


def test_audio_trimmed_elsewhere_is_not_shed_twice() -> None:
    controller = PlayoutController(RATE)
    chunk = np.zeros(FRAME_SAMPLES, np.int16)
    loud = tone(440, 20)  # not quiet, and within patience: nothing is shed yet
    depth = RATE * 60 // 1000  # 50 ms more than the floor, for a whole settle period
    for i in range(30):
        controller.process(i * FRAME_S, depth, loud)
    assert controller.shed == 0 and controller.excess() > 0
    controller.note_removed(RATE * 30 // 1000)  # the sink cut 30 ms at once
    assert controller.excess() == 0  # measured afresh from the next chunk
    kept = controller.process(30 * FRAME_S, depth - RATE * 30 // 1000, chunk)  # the cut buffer
    # what remains above the floor (30 - 10 ms) goes, the 30 ms already cut does not go again
    assert len(kept) == FRAME_SAMPLES - RATE * 20 // 1000


def test_a_speaker_that_stalls_is_back_to_its_depth_soon_after_the_hard_trim() -> None:
    """The speaker's callback stops for 300 ms (a busy machine starves its thread) while
    frames keep arriving: the buffer fills to the sink's 120 ms limit and is cut there. The
    depths seen before the stall no longer describe the buffer; it must come back down
    within 0.7 s, not hold the stall's latency for the whole window."""
    times = arrivals(400)
    signal = np.zeros(400 * FRAME_SAMPLES, np.int16)
    result = play(times, signal, PlayoutController(RATE), stall=(3.0, 3.3), limit_ms=120)
    steady = result.depth_between(2, 3).max()
    assert result.depth_between(3.2, 3.35).max() >= 100  # piled up to the limit
    assert result.depth_between(4.0, 8).max() <= steady + 1
