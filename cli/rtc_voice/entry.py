"""The console script's entry point: a plain device listing goes straight to its output; every
other command line goes to the Typer app (rtc_voice.app), unchanged.

`rtc-voice devices` should cost little more than PortAudio's own query, and Typer (with the app's
commands) costs about as much again as the query. The plain forms — `devices`, `devices --json`,
each with `--config FILE` or `--config=FILE` — are recognised here and run the command's own code
(rtc_voice.ui.devices) with the app's error printing and exit codes (rtc_voice.ui.console), so
they print the same bytes. Anything else, including help, `--probe`, `--echo-test`, `--debug`
(or RTC_VOICE_DEBUG), an option given twice, an unknown option and shell completion, is the
Typer app's to parse.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path


def plain_listing(args: list[str], env: Mapping[str, str]) -> tuple[bool, Path | None] | None:
    """(as_json, config file) when `args` is a plain listing this module runs itself; None
    when the Typer app should parse them."""
    if "_RTC_VOICE_COMPLETE" in env or "RTC_VOICE_DEBUG" in env:
        return None
    if not args or args[0] != "devices":
        return None
    as_json = False
    config: str | None = None
    rest = iter(args[1:])
    for arg in rest:
        if arg == "--json" and not as_json:
            as_json = True
        elif arg == "--config" and config is None:
            config = next(rest, None)
            if config is None:
                return None  # Typer's message: the option needs a value
        elif arg.startswith("--config=") and config is None:
            config = arg.removeprefix("--config=")
        else:
            return None
    if config is None:
        return as_json, None
    return (as_json, Path(config)) if _plain_file(config) else None


def _plain_file(value: str) -> bool:
    """Whether Typer would take `value` for --config (a file, not a directory, readable if it
    exists) without a word: a regular readable file, or nothing there. Anything else (a
    directory, an unreadable file, a value that looks like an option) is left to Typer."""
    if not value or value.startswith("-"):
        return False
    try:
        st = os.stat(value)
    except OSError:
        return True  # nothing there: the settings loader says so, as on Typer's path
    except ValueError:
        return False
    return stat.S_ISREG(st.st_mode) and os.access(value, os.R_OK)


def list_devices(as_json: bool, config: Path | None) -> int:
    """Run the listing with the settings `config` (or RTC_VOICE_CONFIG, or the default file)
    gives; print an error as the Typer app does; return the exit code."""
    from rtc_voice.errors import RtcVoiceError
    from rtc_voice.ui.console import report

    try:
        from rtc_voice.config import load_settings
        from rtc_voice.ui.devices import show_devices

        show_devices(load_settings(config_flag=config), as_json=as_json)
    except (RtcVoiceError, KeyboardInterrupt) as exc:
        return report(exc)
    except (BrokenPipeError, SystemExit) as exc:  # the reader went away (`| head -c 10`)
        if not isinstance(exc, BrokenPipeError) and not isinstance(
            exc.__context__,
            BrokenPipeError,  # rich's answer to it: SystemExit(1)
        ):
            raise
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0  # quietly 0, as every command does (README, exit codes)
    return 0


def main() -> None:
    """Console-script entry point (also `python -m rtc_voice`)."""
    listing = plain_listing(sys.argv[1:], os.environ)
    if listing is None:
        from rtc_voice.app import main as run_app

        run_app()
        return
    sys.exit(list_devices(*listing))
