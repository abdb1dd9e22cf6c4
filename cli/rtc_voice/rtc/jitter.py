"""Pure: an adaptive receive jitter buffer for one-packet-per-frame audio (Opus, 20 ms).

aiortc's receiver pushes each arriving packet in and takes at most one frame out (there is no
playout timer), so a buffer here decides, per packet, which frame to hand on:

- in order and nothing to wait for: at once (about 20 ms median on a clean path, as the
  immediate buffer);
- a hold-back of `target` frames lets a packet that was overtaken still take its place. The
  target follows the reordering seen (how far behind the newest packet a late one arrived,
  the deepest within `REORDER_MEMORY_S`) and shrinks by one frame a second once that has
  passed. Delay jitter alone does not raise it: a frame held here is released only when a later
  packet arrives, so holding back in-order packets never rides out a late one, it only adds
  latency. Riding out late arrivals is the speaker buffer's job (audio/playout.py), which
  plays in time. The interarrival jitter (RFC 3550's estimator, in ms) is still measured and
  reported as `jitter_ms`;
- a missing frame is waited for only until `target + 1` later ones have arrived, then given up
  (counted as concealed: the frame after it arrives with a timestamp gap, and the audio stage
  fills that gap with a short fade instead of silence or a click). aiortc waits for 16 packets
  (320 ms) instead, then plays the backlog in a burst;
- a backlog beyond the target (packets that came late, then all at once) is handed on as one
  longer Opus packet of up to three frames (`merge_opus`, RFC 6716 code 3), since each arriving
  packet may take only one out; so latency does not stay raised after a hiccup and no audio is
  dropped. Only when frames cannot be merged and the backlog passes `target + TRIM_SLACK` is the
  oldest dropped.

Time (`arrival`, seconds) is a parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

CLOCK_HZ = 48000
FRAME_MS = 20.0
MAX_TARGET = 6  # frames (120 ms)
MAX_MERGE = 3  # frames in one handed-on packet (60 ms; Opus allows up to 120 ms)
TRIM_SLACK = 6  # frames beyond the target before the oldest is dropped (unmergeable packets)
SEQ_MOD = 1 << 16
REORDER_MEMORY_S = 10.0  # how long a reordering keeps its hold-back
SHRINK_EVERY_S = 1.0  # then the hold-back shrinks one frame per this

P = TypeVar("P")


def _frame_length(length: int) -> bytes:
    """RFC 6716 section 3.2.1: a frame length in one byte (< 252) or two."""
    if length < 252:
        return bytes([length])
    first = 252 + ((length - 252) % 4)
    return bytes([first, (length - first) // 4])


def merge_opus(packets: list[bytes]) -> bytes | None:
    """Several single-frame Opus packets (code 0) of one configuration as one code-3 packet
    (VBR, no padding); None when they cannot be merged."""
    if len(packets) < 2 or len(packets) > 48:
        return None
    toc = packets[0][0] if packets[0] else None
    if toc is None or toc & 0x03 != 0:
        return None
    frames = []
    for packet in packets:
        if not packet or packet[0] != toc or len(packet) - 1 > 1275:
            return None
        frames.append(packet[1:])
    header = bytes([(toc & 0xFC) | 0x03, 0x80 | len(frames)])
    lengths = b"".join(_frame_length(len(f)) for f in frames[:-1])
    return header + lengths + b"".join(frames)


def _ahead(a: int, b: int) -> int:
    """How far sequence number `a` is after `b` (negative: before), modulo 2^16."""
    d = (a - b) % SEQ_MOD
    return d - SEQ_MOD if d >= SEQ_MOD // 2 else d


@dataclass
class BufferCounts:
    released: int = 0
    concealed: int = 0  # frames given up as lost (the audio stage fades over them)
    late: int = 0  # arrived after being given up, or duplicates: dropped
    trimmed: int = 0  # ready frames dropped to bring latency back down
    merged: int = 0  # frames handed on inside a longer packet (a backlog drained)
    targets: list[int] = field(default_factory=list)


class AdaptiveJitter(Generic[P]):
    """`merge`: combine ready payloads into one (None: they cannot be); without it, frames go
    one per packet and a backlog is trimmed."""

    def __init__(
        self,
        *,
        max_target: int = MAX_TARGET,
        merge: Callable[[list[P]], P | None] | None = None,
    ) -> None:
        self.max_target = max_target
        self.merge = merge
        self.jitter_ms = 0.0
        self.target = 0
        self.counts = BufferCounts()
        self._next: int | None = None  # the next sequence number to hand on
        self._pending: dict[int, tuple[int, P]] = {}  # seq -> (timestamp, payload)
        self._newest: int | None = None
        self._last: tuple[float, int] | None = None  # (arrival, timestamp) for the estimator
        self._reorders: list[tuple[float, int]] = []  # (arrival, depth), deepest last kept
        self._changed = 0.0  # arrival when the target last changed

    def _measure(self, arrival: float, timestamp: int) -> None:
        """RFC 3550's interarrival jitter, for reporting (the hold-back does not follow it)."""
        if self._last is not None:
            last_arrival, last_ts = self._last
            transit = (arrival - last_arrival) * 1000 - (timestamp - last_ts) * 1000 / CLOCK_HZ
            self.jitter_ms += (abs(transit) - self.jitter_ms) / 16
        self._last = (arrival, timestamp)

    def _adapt(self, arrival: float, reordered: int) -> None:
        """Grow the hold-back at once to a reordering `reordered` frames deep (0: none this
        time); shrink it one frame a second once no reordering that deep is remembered."""
        if reordered > 0:
            # a sliding maximum: shallower reorderings before a deeper one no longer matter
            while self._reorders and self._reorders[-1][1] <= reordered:
                self._reorders.pop()
            self._reorders.append((arrival, reordered))
        while self._reorders and self._reorders[0][0] < arrival - REORDER_MEMORY_S:
            self._reorders.pop(0)
        wanted = min(self.max_target, self._reorders[0][1] if self._reorders else 0)
        if wanted > self.target:
            self.target = wanted
            self._changed = arrival
        elif wanted < self.target and arrival - self._changed >= SHRINK_EVERY_S:
            self.target -= 1
            self._changed = arrival
        self.counts.targets.append(self.target)

    def add(self, seq: int, timestamp: int, payload: P, arrival: float) -> tuple[int, P] | None:
        """Take one packet; return (timestamp, payload) of the frame to hand on, or None."""
        if self._next is None:
            self._next = seq
        behind = 0 if self._newest is None else _ahead(self._newest, seq)
        if _ahead(seq, self._next) < 0 or seq in self._pending:
            self.counts.late += 1
            if behind > 0 and seq not in self._pending:  # overtaken, and too late for it
                self._adapt(arrival, behind)
            return None
        self._adapt(arrival, behind)
        if self._newest is None or behind < 0:
            self._newest = seq
            self._measure(arrival, timestamp)
        self._pending[seq] = (timestamp, payload)
        assert self._newest is not None

        # what the buffer holds, in time: from the next frame to the newest, gaps included
        def span() -> int:
            assert self._next is not None and self._newest is not None
            return _ahead(self._newest, self._next) + 1

        # give up on a missing frame once more than the hold-back has arrived after it
        while self._next not in self._pending and span() > self.target + 1:
            self.counts.concealed += 1
            self._next = (self._next + 1) % SEQ_MOD
        # a backlog nothing can drain: drop the oldest (unmergeable packets only)
        while self._next in self._pending and span() > self.target + TRIM_SLACK:
            self._pending.pop(self._next)
            self.counts.trimmed += 1
            self._next = (self._next + 1) % SEQ_MOD
        if self._next not in self._pending or span() <= self.target:
            return None
        count = min(MAX_MERGE, self._ready(), span() - self.target)
        if count > 1 and self.merge is not None:
            seqs = [(self._next + i) % SEQ_MOD for i in range(count)]
            merged = self.merge([self._pending[s][1] for s in seqs])
            if merged is not None:
                timestamp = self._pending[seqs[0]][0]
                for s in seqs:
                    del self._pending[s]
                self._next = (self._next + count) % SEQ_MOD
                self.counts.released += count
                self.counts.merged += count
                return timestamp, merged
        frame = self._pending.pop(self._next)
        self._next = (self._next + 1) % SEQ_MOD
        self.counts.released += 1
        return frame

    def _ready(self) -> int:
        """In-order frames waiting from the next one on."""
        count, seq = 0, self._next
        assert seq is not None
        while seq in self._pending:
            count += 1
            seq = (seq + 1) % SEQ_MOD
        return count
