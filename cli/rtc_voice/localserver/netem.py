"""Pure: the local server's network rehearsal: a spec such as "jitter=30ms,loss=2%" or a preset
name, and the per-packet decision it makes (delay, or drop) from a seeded random source.

Jitter is a random extra delay per packet, uniform from 0 to twice the given figure (so its
mean is the figure, and packets may overtake each other, as on a real jittery path); `delay` is
a fixed delay added to every packet; `loss` drops packets independently at random; `seed=N`
makes the random fate repeatable (the same packets are lost in every run).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

PRESETS: dict[str, str] = {
    "clean": "jitter=0ms,loss=0%",
    "lossy": "jitter=10ms,loss=5%",
    "jittery": "jitter=60ms,loss=0%",
    "mobile": "delay=40ms,jitter=30ms,loss=2%",
    "bad": "delay=80ms,jitter=60ms,loss=8%",
}
_TERM = re.compile(r"^(delay|jitter|loss|seed)=(\d+(?:\.\d+)?)([a-z%]+)?$")
_UNITS = {"delay": "ms", "jitter": "ms", "loss": "%", "seed": ""}


class NetworkSpecError(ValueError):
    """A `--network` spec that cannot be read (the message says what is allowed)."""


@dataclass(frozen=True)
class Impairment:
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0  # 0..1
    seed: int | None = None  # the same seed gives every call the same fate (fair comparisons)

    @property
    def active(self) -> bool:
        return self.delay_ms > 0 or self.jitter_ms > 0 or self.loss > 0

    def describe(self) -> str:
        parts = []
        if self.delay_ms:
            parts.append(f"delay {self.delay_ms:g} ms")
        parts.append(f"jitter {self.jitter_ms:g} ms")
        parts.append(f"loss {self.loss * 100:g}%")
        return ", ".join(parts)


def parse_network(spec: str) -> Impairment:
    """`"jitter=30ms,loss=2%"`, `"delay=40ms"` or a preset name (see PRESETS)."""
    text = spec.strip().lower()
    text = PRESETS.get(text, text)
    values: dict[str, float] = {}
    for term in filter(None, (t.strip() for t in text.split(","))):
        match = _TERM.match(term)
        if match is None:
            raise NetworkSpecError(
                f"cannot read '{term}' in '{spec}': expected delay=MS, jitter=MS, loss=PERCENT, "
                f"seed=N or a preset ({', '.join(PRESETS)})"
            )
        name, number, unit = match.group(1), float(match.group(2)), match.group(3)
        if name == "seed" and (unit is not None or not number.is_integer()):
            raise NetworkSpecError(f"'{term}' in '{spec}': seed is a whole number")
        if unit is not None and unit != _UNITS[name]:
            raise NetworkSpecError(f"'{term}' in '{spec}': {name} is given in {_UNITS[name]}")
        values[name] = number
    if not values.keys() - {"seed"}:
        raise NetworkSpecError(f"'{spec}' names no impairment")
    if values.get("loss", 0.0) > 100:
        raise NetworkSpecError(f"'{spec}': loss is at most 100%")
    if values.get("jitter", 0.0) > 1000 or values.get("delay", 0.0) > 5000:
        raise NetworkSpecError(f"'{spec}': jitter is at most 1000 ms, delay at most 5000 ms")
    return Impairment(
        delay_ms=values.get("delay", 0.0),
        jitter_ms=values.get("jitter", 0.0),
        loss=values.get("loss", 0.0) / 100,
        seed=int(values["seed"]) if "seed" in values else None,
    )


class PacketFate:
    """Decides each packet's extra delay in seconds, or None to drop it."""

    def __init__(self, impairment: Impairment, seed: int | None = None) -> None:
        self.impairment = impairment
        self._random = random.Random(seed if seed is not None else impairment.seed)
        self.sent = 0
        self.dropped = 0

    def __call__(self, packet: bytes = b"") -> float | None:
        imp = self.impairment
        if imp.loss and self._random.random() < imp.loss:
            self.dropped += 1
            return None
        self.sent += 1
        jitter = self._random.uniform(0, 2 * imp.jitter_ms) if imp.jitter_ms else 0.0
        return (imp.delay_ms + jitter) / 1000
