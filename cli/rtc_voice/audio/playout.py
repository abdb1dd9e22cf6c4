"""Pure: playout-depth control for the speaker buffer (how much audio waits to be played).

Audio that piles up in the speaker buffer (a burst at start, one hiccup of a busy machine) is
latency the listener keeps for the rest of the call unless something takes it out again. The
`PlayoutController` sees every chunk on its way into the buffer, with the buffer's depth at that
moment, and hands back the chunk to queue: unchanged, or shortened to bring an excess down.

What it measures, over the last `window_s` seconds:

- the buffer's low-water mark: the least audio that was still queued when a chunk arrived. What
  stays above `floor_ms` there was never needed to ride out late arrivals: it is the excess.
- the arrival jitter: the spread of (arrival time - media time) of the chunks. It is reported
  (`jitter_ms`, `target_ms` = floor + jitter, the depth the buffer settles at when chunks come
  on time) and it is why the low-water mark is taken over a window: a late chunk lowers it, so a
  buffer that rides out jitter is left alone.
- the low-water mark fades: a low older than `hold_s` counts as `fade_ms_per_s` higher for each
  second beyond that. Steady jitter keeps making fresh lows within `hold_s`, so its buffer stays;
  one hiccup of a busy machine (a stall, the speaker running dry, then the backlog at once) is
  forgotten gradually, a 45 ms excess within about 0.6 s, instead of raising every sound for the
  whole window.

How it sheds an excess, gently and without clicks:

1. Quiet chunks (peak below `quiet_dbfs`) are shortened or dropped: nobody hears missing silence.
2. If the excess outlives `patience_s` without quiet chunks (continuous speech), one short
   segment (2.5-10 ms) is cut from a chunk where the signal best repeats itself (the lag with
   the highest normalised correlation, a pitch period for voiced speech) and the edges are
   crossfaded over `crossfade_ms`: a time-scale step of at most one segment per chunk.

Nothing here reads a clock or a device: time, depth and samples are parameters.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]


@dataclass(frozen=True)
class PlayoutConfig:
    floor_ms: float = 10.0  # audio to keep queued when the latest chunk arrives
    window_s: float = 2.0  # memory for the low-water mark and the jitter
    settle_s: float = 0.5  # observe this long (after start or reset) before shedding
    hysteresis_ms: float = 5.0  # excess below this is left alone
    quiet_dbfs: float = -45.0  # peak level under which a chunk counts as silence
    patience_s: float = 0.4  # wait this long for quiet chunks before cutting into sound
    splice_min_ms: float = 2.5
    splice_max_ms: float = 10.0
    crossfade_ms: float = 5.0
    gap_s: float = 0.5  # an arrival gap this long is a new stream: start measuring again
    hold_s: float = 0.3  # a low-water mark is kept exactly this long,
    fade_ms_per_s: float = 150.0  # then forgotten this fast


class _WindowExtreme:
    """Sliding-window minimum (or maximum) over timestamped values, O(1) amortised.

    With `fade` (units per second, a minimum only), a value older than `hold_s` counts as if it
    had risen by `fade` for each second beyond that: a deep low is kept exactly for `hold_s`,
    then forgotten gradually rather than all at once when it leaves the window."""

    def __init__(
        self, window_s: float, *, largest: bool = False, fade: float = 0.0, hold_s: float = 0.0
    ) -> None:
        self._window = window_s
        self._sign = -1.0 if largest else 1.0
        self._fade = fade
        self._hold = hold_s if fade else 0.0
        self._now = 0.0
        self._items: collections.deque[tuple[float, float]] = collections.deque()
        self._fresh = _WindowExtreme(hold_s, largest=largest) if self._hold else None
        self._waiting: collections.deque[tuple[float, float]] = collections.deque()

    def add(self, now: float, value: float) -> None:
        self._now = now
        if self._fresh is None:
            self._insert(now, value)
            return
        self._fresh.add(now, value)
        self._waiting.append((now, value))
        while self._waiting[0][0] <= now - self._hold:  # old enough to start fading
            self._insert(*self._waiting.popleft())
        self._expire()

    def _insert(self, at: float, value: float) -> None:
        keyed = self._sign * value - self._fade * at
        while self._items and self._items[-1][1] >= keyed:
            self._items.pop()
        self._items.append((at, keyed))
        self._expire()

    def _expire(self) -> None:
        while self._items and self._items[0][0] < self._now - self._window:
            self._items.popleft()

    @property
    def empty(self) -> bool:
        return not self._items and (self._fresh is None or self._fresh.empty)

    def value(self) -> float:
        faded = (
            self._sign * (self._items[0][1] + self._fade * (self._now - self._hold))
            if self._items
            else None
        )
        if self._fresh is None:
            assert faded is not None
            return faded
        fresh = self._fresh.value()
        return fresh if faded is None else self._sign * min(self._sign * fresh, self._sign * faded)

    def clear(self) -> None:
        self._items.clear()
        self._waiting.clear()
        if self._fresh is not None:
            self._fresh.clear()


class PlayoutController:
    """Decides, chunk by chunk, how much of the speaker buffer is excess and sheds it gently.

    Feed it `process(now, depth, chunk)` for each chunk before it is queued; `depth` is the
    number of samples already queued. Call `reset()` when the buffer is emptied on purpose
    (barge-in). Counters: `shed_quiet` and `shed_spliced` (samples taken out each way),
    `splices`.
    """

    def __init__(self, rate: int, config: PlayoutConfig | None = None) -> None:
        self.rate = rate
        self.config = config or PlayoutConfig()
        c = self.config
        self._floor = round(rate * c.floor_ms / 1000)
        self._hysteresis = round(rate * c.hysteresis_ms / 1000)
        self._quiet_peak = 32768.0 * 10 ** (c.quiet_dbfs / 20)
        self._splice_min = max(1, round(rate * c.splice_min_ms / 1000))
        self._splice_max = max(self._splice_min, round(rate * c.splice_max_ms / 1000))
        self._fade = max(2, round(rate * c.crossfade_ms / 1000))
        ramp = (np.arange(self._fade, dtype=np.float64) + 0.5) / self._fade
        self._fade_in = ramp
        self._fade_out = 1.0 - ramp
        # depth + shed so far, at each arrival
        self._low = _WindowExtreme(c.window_s, fade=rate * c.fade_ms_per_s / 1000, hold_s=c.hold_s)
        self._delay_min = _WindowExtreme(c.window_s)
        self._delay_max = _WindowExtreme(c.window_s, largest=True)
        self.shed_quiet = 0
        self.shed_spliced = 0
        self.splices = 0
        self._started: float | None = None
        self._last_arrival = 0.0
        self._media = 0  # samples received since the stream (re)started
        self._excess_since: float | None = None

    # --- measurements ----------------------------------------------------------------------

    @property
    def shed(self) -> int:
        return self.shed_quiet + self.shed_spliced

    @property
    def jitter_ms(self) -> float:
        """Spread of arrival delays over the window, in ms (0 before any arrival)."""
        if self._started is None:
            return 0.0
        return (self._delay_max.value() - self._delay_min.value()) * 1000

    @property
    def target_ms(self) -> float:
        """The depth the buffer is held at when a chunk arrives on time: floor + jitter."""
        return self.config.floor_ms + self.jitter_ms

    def excess(self) -> int:
        """Samples of buffered audio that were never needed within the window (0 while
        settling)."""
        if self._started is None or self._last_arrival - self._started < self.config.settle_s:
            return 0
        if self._low.empty:
            return 0
        low_water = self._low.value() - self.shed
        excess = int(low_water) - self._floor
        return excess if excess >= self._hysteresis else 0

    def note_removed(self, samples: int) -> None:
        """Someone else took `samples` out of the buffer (the sink's hard trim, when the
        device stopped consuming for a while and audio piled up to its limit): the depths seen
        before belong to a timeline that no longer exists, so the low-water mark is measured
        afresh from the next chunk. What remains above the floor is then shed at once (quiet)
        or after `patience_s` (sound); what was trimmed is never shed a second time."""
        if samples > 0:
            self._low.clear()

    def reset(self) -> None:
        """The buffer was emptied on purpose, or the stream restarts: measure afresh."""
        self._low.clear()
        self._delay_min.clear()
        self._delay_max.clear()
        self._started = None
        self._media = 0
        self._excess_since = None

    # --- the decision ----------------------------------------------------------------------

    def process(self, now: float, depth: int, chunk: Pcm) -> Pcm:
        """The part of `chunk` to queue, given `depth` samples already queued at time `now`."""
        if self._started is not None and now - self._last_arrival >= self.config.gap_s:
            self.reset()
        if self._started is None:
            self._started = now
        self._last_arrival = now
        delay = now - self._media / self.rate
        self._media += len(chunk)
        self._delay_min.add(now, delay)
        self._delay_max.add(now, delay)
        self._low.add(now, depth + self.shed)

        excess = self.excess()
        if excess <= 0 or len(chunk) == 0:
            self._excess_since = None
            return chunk
        if self._excess_since is None:
            self._excess_since = now
        if float(np.max(np.abs(chunk.astype(np.int32)))) < self._quiet_peak:
            cut = min(excess, len(chunk))
            self.shed_quiet += cut
            return chunk[: len(chunk) - cut]
        if now - self._excess_since < self.config.patience_s:
            return chunk
        return self._splice(chunk, excess)

    def _splice(self, chunk: Pcm, excess: int) -> Pcm:
        """Cut one segment of `lag` samples where the signal best repeats itself, crossfaded."""
        fade = self._fade
        longest = min(self._splice_max, excess, len(chunk) - 2 * fade)
        if longest < self._splice_min:
            return chunk
        x = chunk.astype(np.float64)
        head = x[:fade]
        candidates = np.lib.stride_tricks.sliding_window_view(
            x[self._splice_min : longest + fade], fade
        )
        dots = candidates @ head
        energy = np.einsum("ij,ij->i", candidates, candidates)
        score = dots / np.sqrt(energy * float(head @ head) + 1e-9)
        lag = self._splice_min + int(np.argmax(score))
        joined = head * self._fade_out + x[lag : lag + fade] * self._fade_in
        out = np.concatenate([joined, x[lag + fade :]])
        self.shed_spliced += lag
        self.splices += 1
        spliced: Pcm = np.clip(np.rint(out), -32768, 32767).astype(np.int16)
        return spliced
