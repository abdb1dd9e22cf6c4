"""`rtc-voice devices` without --echo-test: the device list, the probe, and the microphone and
speaker rtc-voice would use, as a table or as JSON.

The one implementation, run by the Typer command (rtc_voice.app) and by the entry point's quick
path (rtc_voice.entry). It loads PortAudio (audio/catalog.py) and, for the table only, rich's
console and table: no numpy, no asyncio, no Typer.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rtc_voice.audio import catalog as audio
from rtc_voice.errors import AudioError, RtcVoiceError
from rtc_voice.ui.console import stderr, stdout

if TYPE_CHECKING:
    from rtc_voice.config import Settings


def show_devices(settings: Settings, *, probe: bool = False, as_json: bool = False) -> None:
    """List the devices PortAudio offers and the ones `settings` pick (a pick that fails is
    shown, not raised); with `probe`, open each one first. An AudioError when there are none."""
    found = audio.list_devices()
    if not found:
        raise AudioError("No audio devices were found.", hint=audio.NO_DEVICES_HINT)
    chosen: dict[str, audio.Device | RtcVoiceError] = {}
    for kind, spec in zip(
        audio.KINDS, (settings.input_device, settings.output_device), strict=True
    ):
        try:
            chosen[kind] = audio.select(spec, kind, found)
        except RtcVoiceError as exc:
            chosen[kind] = exc
    results: list[audio.ProbeResult] = []
    if probe:
        with stderr().status("Opening every device…"):
            results = audio.probe_all(found)
    if as_json:
        print(
            json.dumps(
                {
                    "devices": [d.as_json() for d in found],
                    "probe": [
                        {
                            "index": r.device.index,
                            "kind": r.kind,
                            "rate": r.rate,
                            "ok": r.ok,
                            "error": r.error,
                        }
                        for r in results
                    ]
                    if probe
                    else None,
                    "selected": {
                        k: (v.index if isinstance(v, audio.Device) else None)
                        for k, v in chosen.items()
                    },
                },
                indent=2,
            )
        )
        return
    from rich.table import Table

    table = Table(title="Audio devices", title_justify="left")
    for column in ("#", "name", "host API", "in", "out", "rate", "default"):
        table.add_column(
            column, justify="right" if column in ("#", "in", "out", "rate") else "left"
        )
    for d in found:
        marks = ", ".join(
            m for m, on in (("input", d.default_input), ("output", d.default_output)) if on
        )
        table.add_row(
            str(d.index),
            d.name,
            d.hostapi,
            str(d.max_input_channels),
            str(d.max_output_channels),
            f"{d.default_samplerate:g}",
            marks,
        )
    out = stdout()
    out.print(table)
    if probe:
        probe_table = Table(title="Probe (mono, really opened)", title_justify="left")
        for column in ("#", "name", "as", "rate", "result"):
            probe_table.add_column(column)
        for r in results:
            verdict = "[green]ok[/]" if r.ok else f"[red]{r.error}[/]"
            probe_table.add_row(str(r.device.index), r.device.name, r.kind, str(r.rate), verdict)
        out.print(probe_table)
    for kind, label in (("input", "Microphone"), ("output", "Speaker")):
        value = chosen[kind]
        if isinstance(value, audio.Device):
            out.print(f"{label}: [bold]{value}[/]")
        else:
            out.print(f"{label}: [red]{value.message}[/] {value.hint or ''}")
