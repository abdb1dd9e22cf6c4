"""Typer commands, and where their errors become printed sentences and exit codes (printed by
ui/console.py, which the entry point's quick path for plain `devices` listings shares).

Heavy modules (aiortc, av, numpy, sounddevice, httpx, keyring) are imported inside the commands
that need them, so `rtc-voice --help` stays fast.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from typer.core import TyperGroup
from typer.main import get_command_name

from rtc_voice import __version__
from rtc_voice.config import Settings
from rtc_voice.errors import ExitCode, RtcVoiceError
from rtc_voice.protocol.defaults import VOICES
from rtc_voice.ui.console import print_error, report, stderr, stdout

SERVE_KEY_ENV = "RTC_VOICE_SERVE_API_KEY"

DEFAULTS = Settings()  # shown in --help; a config file or RTC_VOICE_* may change them


def _hide_flag_types(command: Any, ctx: Any) -> None:
    """On/off flags take no value, so `--help` should not show `<bool>` after them (newer Typer
    does): an empty metavar hides it. Applied to the whole command tree, including each
    command's (cached) help option, before the root parses its arguments."""
    params = list(getattr(command, "params", ()))
    with contextlib.suppress(Exception):
        params.append(command.get_help_option(ctx))
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        _plain_default(param)
    for sub in getattr(command, "commands", {}).values():
        _hide_flag_types(sub, ctx)


def _plain_default(param: Any) -> None:
    """A default given as text (the settings' defaults: `show_default="marin"`) is shown as it
    is, `[default: marin]`; Typer wraps it in parentheses, `[default: (marin)]`, as if it were
    a description rather than the value. If Typer stops asking this method, its own form
    stays."""
    text = getattr(param, "show_default", None)
    if isinstance(text, str) and hasattr(param, "_get_default_string"):
        param._get_default_string = lambda **_: text


_PLAIN_NUMBER = {  # numbers the coercion below reads itself (up to 18 digits, no exponent)
    int: re.compile(r"-?(?:0|[1-9][0-9]{0,17})"),
    float: re.compile(r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,18})?"),
}


class _CoerceGivenValues:
    """Typer (0.2x) coerces each option through a pydantic TypeAdapter built on first use, even
    an option the user left out, so every command paid for importing pydantic (about 60 ms, a
    quarter of `rtc-voice devices`). An option left out (None) needs no coercion: Typer's own
    coerce returns None for it (or () for a repeatable one) before touching the adapter; nor
    does a text option (str, no custom parser), whose adapter returns the text it is given.
    This stand-in answers those two cases the same way, and a whole number or decimal option
    without bounds given a plain number (`--max-duration 60`, `serve --port 0`) or left at its
    default (already of its type), where the adapter's answer is `int(text)`/`float(text)` or
    the value itself (a test compares them); it hands every other value to Typer's real
    coercion, built then, so values, messages and exit codes stay Typer's."""

    def __init__(self, build: Any) -> None:
        self._build = build

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:
            return () if param.multiple or param.nargs == -1 else None
        described = param.type_descriptor
        kind, info = described.annotation, described.parameter_info
        if info.parser is None and type(value) is kind and kind is str:
            return value
        if (
            kind in _PLAIN_NUMBER
            and info.parser is None
            and getattr(info, "min", None) is None
            and getattr(info, "max", None) is None
            and not (param.multiple or param.nargs != 1)
        ):
            if type(value) is kind:
                return value
            if type(value) is str and _PLAIN_NUMBER[kind].fullmatch(value):
                return kind(value)
        param._runtime_param = real = self._build(described)
        return real.coerce(value, param=param, ctx=ctx)


def _coerce_given_values_only(command: Any, ctx: Any) -> None:
    """Install `_CoerceGivenValues` on every parameter of the command tree (each command's
    cached help option included) whose coercion is not built yet; a no-op on a Typer without
    that layer (older releases use click types)."""
    try:
        from typer._coercion import build_runtime_param
    except ImportError:
        return
    params = list(getattr(command, "params", ()))
    with contextlib.suppress(Exception):
        params.append(command.get_help_option(ctx))
    for param in params:
        if getattr(param, "_runtime_param", False) is None and hasattr(param, "type_descriptor"):
            param._runtime_param = _CoerceGivenValues(build_runtime_param)
    for sub in getattr(command, "commands", {}).values():
        _coerce_given_values_only(sub, ctx)


class _ErrorHandlingGroup(TyperGroup):
    """Turns RtcVoiceError and Ctrl-C into one printed sentence plus the documented exit code.

    `--debug` is accepted anywhere on the command line (`rtc-voice talk --debug`): it is moved
    in front of the subcommand, where the root option reads it.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _hide_flag_types(self, ctx)
        _coerce_given_values_only(self, ctx)
        end = args.index("--") if "--" in args else len(args)
        if "--debug" in args[:end]:
            head = [a for a in args[:end] if a != "--debug"]
            args = ["--debug", *head, *args[end:]]
        with _pipe_closed_is_quiet():  # the root's --help
            return super().parse_args(ctx, args)

    def main(  # type: ignore[override]
        self, args: list[str] | None = None, standalone_mode: bool = True, **kwargs: Any
    ) -> Any:
        """Click's own parse errors (an unknown option, a value that is not a number) in the
        same form as every other error: `Error: …` and a hint (click's guess at the option
        meant, and the command's help), exit code 2, instead of Typer's boxed panel."""
        try:
            code = super().main(args, standalone_mode=False, **kwargs)
        except _PipeClosed:
            _quiet_closed_pipes()
            code = int(ExitCode.OK)  # as `talk` does when its reader leaves
        except typer.Abort:
            _stderr().print("[yellow]Aborted.[/]")
            code = 1
        except Exception as exc:
            # click's classes, by name: Typer has its own copy of click since 0.22, plain
            # click before (pyproject allows both).
            kinds = {cls.__name__ for cls in type(exc).__mro__}
            if "ClickException" not in kinds:
                raise
            failure: Any = exc
            if "UsageError" not in kinds or "NoArgsIsHelpError" in kinds:  # help: Typer's
                from typer import rich_utils

                rich_utils.rich_format_error(failure)
            else:
                given = sys.argv[1:] if args is None else list(args)
                try:
                    with _pipe_closed_is_quiet():
                        print_error(*_usage_error(failure, self, given))
                except _PipeClosed:
                    _quiet_closed_pipes()
            code = failure.exit_code
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        with _pipe_closed_is_quiet():
            try:
                return super().invoke(ctx)
            except RtcVoiceError as exc:
                if ctx.meta.get("rtc_voice.debug"):
                    traceback.print_exc(file=sys.stderr)
                raise typer.Exit(report(exc)) from None
            except KeyboardInterrupt as exc:
                raise typer.Exit(report(exc)) from None


class _PipeClosed(Exception):
    """stdout or stderr was closed by its reader (`rtc-voice --help | head -2`). Neither an
    OSError nor a SystemExit, so it passes Typer's handler and rich's (both exit 1) on its
    way to `main`."""


@contextlib.contextmanager
def _pipe_closed_is_quiet() -> Any:
    try:
        yield
    except BrokenPipeError:
        raise _PipeClosed from None
    except SystemExit as exc:  # rich's own answer to a broken pipe: SystemExit(1)
        if isinstance(exc.__context__, BrokenPipeError):
            raise _PipeClosed from None
        raise


def _quiet_closed_pipes() -> None:
    """Point stdout and stderr at /dev/null so nothing more (Python's flush at exit included)
    is written to a pipe nobody reads."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(devnull, stream.fileno())
    os.close(devnull)


def _usage_error(exc: Any, root: Any, args: list[str]) -> tuple[str, str]:
    """(sentence, hint) for a click UsageError: its message as one sentence; the hint names
    click's guesses at what was meant (an unknown option's close matches) and the help of the
    command the error is in (the error's context, or else the commands `args` name)."""
    guesses = list(getattr(exc, "possibilities", None) or ())  # closest first
    message = (exc.message if guesses else exc.format_message()).strip()
    if not message.endswith((".", "?", "!")):
        message += "."
    if exc.ctx is not None:
        command = exc.ctx.command_path
    else:
        path, group = ["rtc-voice"], root
        for arg in args:
            sub = getattr(group, "commands", {}).get(arg)
            if sub is not None:
                path.append(arg)
                group = sub
            elif not arg.startswith("-"):
                break
        command = " ".join(path)
    hint = f"See `{command} --help`."
    if guesses:
        hint = f"Did you mean {' or '.join(guesses)}? {hint}"
    elif getattr(exc, "option_name", None) == "--voice":  # `--voice` with no value after it
        from rtc_voice.config import voice_hint

        hint = f"{voice_hint()} {hint}"
    return message, hint


_stdout = stdout  # the short names the commands below use
_stderr = stderr


HELP = """Talk to an OpenAI Realtime model from your terminal, over WebRTC.

[bold]Quick start[/]

  rtc-voice talk --local     try it offline on the built-in local server
  rtc-voice auth login       store your API key in the OS keyring
  rtc-voice talk             talk to gpt-realtime (microphone + speakers)
  rtc-voice token            mint a short-lived ek_ key for a browser

Settings: flags > RTC_VOICE_* environment > config file > defaults
(see `rtc-voice config show`). Exit codes are listed in the README.
"""

app = typer.Typer(
    cls=_ErrorHandlingGroup,
    help=HELP,
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
auth_app = typer.Typer(
    help="Store, inspect or remove your standard OpenAI API key (kept in the OS keyring).",
    no_args_is_help=True,
)
config_app = typer.Typer(
    help="Show where settings come from, or create a config file.", no_args_is_help=True
)
app.add_typer(auth_app, name="auth")
app.add_typer(config_app, name="config")


def _version(value: bool) -> None:
    if value:
        print(f"rtc-voice {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Print the version."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="RTC_VOICE_DEBUG",
            help="Show tracebacks for errors (never with secrets); also after the subcommand.",
        ),
    ] = False,
) -> None:
    ctx.meta["rtc_voice.debug"] = debug


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        help="Settings file to read instead of the default (also RTC_VOICE_CONFIG).",
        dir_okay=False,
        show_default=False,
    ),
]


ModelOpt = Annotated[
    str | None,
    typer.Option(metavar="MODEL", help="Realtime model.", show_default=DEFAULTS.model),
]
VoiceOpt = Annotated[
    str | None,
    typer.Option(
        metavar="VOICE",
        help="Assistant voice: " + ", ".join(VOICES) + ", or a custom voice's id (voice_…).",
        show_default=DEFAULTS.voice,
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        metavar="URL",
        help="API base URL ending in /v1.",
        show_default=DEFAULTS.base_url,
    ),
]


def _settings(config: Path | None, **flags: object) -> Settings:
    from rtc_voice.config import load_settings

    return load_settings(config_flag=config, flags=flags)


# --- token -------------------------------------------------------------------------------------


@app.command()
def token(
    ttl: Annotated[
        int | None,
        typer.Option(
            "--ttl",
            metavar="SECONDS",
            help="Lifetime in seconds, 10 to 7200.",
            show_default=str(DEFAULTS.token_ttl),
        ),
    ] = None,
    model: ModelOpt = None,
    voice: VoiceOpt = None,
    instructions: Annotated[
        str | None,
        typer.Option(
            metavar="TEXT",
            help="System instructions baked into the key's session.",
            show_default="the model's own",
        ),
    ] = None,
    base_url: BaseUrlOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole response as JSON.")
    ] = False,
) -> None:
    """Mint a short-lived ephemeral key (ek_…) for another client, such as a browser page.

    Only the key is printed on stdout, so [bold]KEY=$(rtc-voice token)[/] works; the
    expiry goes to stderr. The key carries the session settings (model, voice,
    turn detection, transcription), and the standard key never leaves this
    machine except to mint it.

    Example: rtc-voice token --ttl 120 --voice cedar
    """
    from rtc_voice.api import RealtimeApi
    from rtc_voice.credentials import require_api_key
    from rtc_voice.protocol.client import client_secret_request

    settings = _settings(
        config,
        token_ttl=ttl,
        model=model,
        voice=voice,
        instructions=instructions,
        base_url=base_url,
    )
    key = require_api_key()

    async def mint() -> Any:
        async with RealtimeApi(settings.base_url, timeout=settings.connect_timeout) as api:
            return await api.create_client_secret(key.value, client_secret_request(settings))

    import asyncio

    secret = asyncio.run(mint())
    if as_json:
        print(json.dumps(secret.raw, indent=2))
    else:
        print(secret.value)
    left = secret.expires_at - int(time.time())
    when = datetime.fromtimestamp(secret.expires_at).astimezone().strftime("%H:%M:%S %Z")
    model_name = secret.session.get("model") or settings.model
    _stderr().print(f"Ephemeral key for {model_name} expires at {when} (in {left} s).", style="dim")


# --- auth --------------------------------------------------------------------------------------


@auth_app.command("login")
def auth_login() -> None:
    """Store your standard API key (sk-…) in the OS keyring.

    Prompts without echo; or pipe it in: [bold]pass show openai | rtc-voice auth login[/]
    """
    from rtc_voice.credentials import check_key_shape, describe_backend, redact, store_key
    from rtc_voice.errors import CredentialsError

    if sys.stdin is None or sys.stdin.closed:
        raise CredentialsError(
            "No key was given: standard input is closed.",
            hint="Run it in a terminal to be prompted, or pipe the key in: "
            "`pass show openai | rtc-voice auth login`.",
        )
    if sys.stdin.isatty():
        raw = typer.prompt("OpenAI API key (input hidden)", hide_input=True)
    else:
        raw = sys.stdin.readline()
    key = check_key_shape(raw)
    store_key(key)
    where, unencrypted = describe_backend()
    _stderr().print(f"Stored {redact(key)} in {where}, service rtc-voice.")
    if unencrypted:
        _stderr().print(
            "[bold yellow]Warning:[/] anyone who can read that file can use your key. Prefer a "
            "Secret Service (gnome-keyring, KWallet) or the OPENAI_API_KEY variable from a "
            "password manager; `rtc-voice auth logout` removes it."
        )


@auth_app.command("logout")
def auth_logout() -> None:
    """Remove the stored API key from the OS keyring (or the file-based store in use)."""
    from rich.markup import escape

    from rtc_voice.credentials import delete_key, describe_backend

    where = escape(describe_backend()[0])
    if delete_key():
        _stderr().print(f"Removed the API key from {where}.")
    else:
        _stderr().print(f"No API key was stored in {where}; nothing to remove.")


@auth_app.command("status")
def auth_status() -> None:
    """Say which API key rtc-voice would use and where it comes from (redacted)."""
    from rtc_voice.credentials import ENV_KEY, read_keyring, require_api_key
    from rtc_voice.errors import CredentialsError

    key = require_api_key()
    if key.origin == "env":
        where = f"the {ENV_KEY} environment variable"
        try:
            if read_keyring():
                where += " (it overrides the key stored in the OS keyring)"
        except CredentialsError:
            pass
    else:
        from rtc_voice.credentials import describe_backend

        where = describe_backend()[0] + ", service rtc-voice"
    print(f"API key {key.redacted} from {where}.")


# --- config ------------------------------------------------------------------------------------


@config_app.command("path")
def config_path(config: ConfigOpt = None) -> None:
    """Print the path of the config file rtc-voice reads."""
    import os

    from rtc_voice.config import config_exists, resolve_config_path

    path, _ = resolve_config_path(config, os.environ)
    print(path)
    if not config_exists(path):
        _stderr().print("(it does not exist yet: `rtc-voice config init` creates it)", style="dim")


@config_app.command("show")
def config_show(
    config: ConfigOpt = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='Print as JSON: {"KEY": {"value": typed, "source": "default|file|env|flag", '
            '"origin": path, variable, flag or null}}.',
        ),
    ] = False,
) -> None:
    """Show every effective setting and where its value came from (default/file/env/flag)."""
    from rich.table import Table

    from rtc_voice.config import effective_json, effective_rows

    settings = _settings(config)
    if as_json:
        print(json.dumps(effective_json(settings), indent=2))
        return
    rows = effective_rows(settings)
    path = settings.config_path
    where = f"file: {path}" if path is None or path.exists() else f"no file at {path}: defaults"
    table = Table(title=f"Settings ({where})", title_justify="left")
    table.add_column("key", style="cyan", no_wrap=True)
    table.add_column("value")
    table.add_column("source", style="dim")
    for key, value, src in rows:
        table.add_row(key, value, str(src))
    _stdout().print(table)


@config_app.command("init")
def config_init(
    config: ConfigOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example config file (every key, with its default)."""
    import os

    from rtc_voice.config import config_exists, example_toml, resolve_config_path
    from rtc_voice.errors import ConfigError

    path, _ = resolve_config_path(config, os.environ)
    if config_exists(path) and not force:
        raise ConfigError(
            f"{path} already exists; not overwriting it.",
            hint="Add --force to replace it, or edit it directly.",
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(example_toml(), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot write {path}: {exc.strerror or exc}.") from None
    _stderr().print(f"Wrote {path}.")


@app.command()
def talk(
    local: Annotated[
        bool, typer.Option("--local", help="Talk to the built-in offline server (no key needed).")
    ] = False,
    input_: Annotated[
        str | None,
        typer.Option(
            "--input",
            metavar="DEVICE|FILE|none",
            help="Microphone: its index or part of its name (see `rtc-voice devices`), an audio "
            "FILE to play as your voice (wav, flac, mp3, ogg: any format FFmpeg reads), or none "
            "(no microphone: type, or --say).",
            show_default="the system's microphone",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            metavar="DEVICE|FILE|none",
            help="Speaker: its index or part of its name, a FILE to write the reply audio to "
            "(.wav, .flac, .mp3, .ogg, .opus), or none.",
            show_default="the system's speaker",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            metavar="EK",
            help="Use this ephemeral key (ek_…, from `rtc-voice token`); no standard key needed.",
        ),
    ] = None,
    say: Annotated[
        list[str] | None,
        typer.Option(
            "--say",
            metavar="TEXT",
            help="Type this message once connected; repeat for more, each sent after the "
            "reply before it. Without a terminal the call ends after the last reply.",
        ),
    ] = None,
    exit_after_reply: Annotated[
        bool,
        typer.Option("--exit-after-reply", help="Hang up once the last --say is answered."),
    ] = False,
    transcript: Annotated[
        Path | None,
        typer.Option(
            "--transcript", metavar="FILE", help="Write turns as they finish: .jsonl or .md."
        ),
    ] = None,
    record: Annotated[
        Path | None,
        typer.Option(
            "--record",
            metavar="FILE",
            help="Record the call in stereo, you left, assistant right: .wav, .flac, .mp3, "
            ".ogg or .opus.",
        ),
    ] = None,
    ptt: Annotated[
        bool, typer.Option("--ptt", help="Push-to-talk: space starts and ends your turn.")
    ] = False,
    max_duration: Annotated[
        float | None,
        typer.Option(
            "--max-duration",
            metavar="SECONDS",
            help="Hang up after this many seconds.",
            show_default="none; OpenAI ends a session at 60 minutes",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print server events as JSON lines (not a TTY UI).")
    ] = False,
    no_aec: Annotated[
        bool,
        typer.Option(
            "--no-aec",
            help="Turn echo cancellation off (fine with headphones). By default the speaker's "
            "sound is removed from the microphone; config key: audio.echo_cancellation.",
        ),
    ] = False,
    ui: Annotated[
        str,
        typer.Option(
            "--ui",
            metavar="full|inline",
            help="full: the whole terminal, with scrolling, the log and help; inline: "
            "finished turns go to the terminal's scrollback, a live status stays below.",
        ),
    ] = "full",
    no_reconnect: Annotated[
        bool,
        typer.Option(
            "--no-reconnect", help="End the call when the network drops (default: resume it)."
        ),
    ] = False,
    network: Annotated[
        str | None,
        typer.Option(
            "--network",
            metavar="SPEC",
            help="With --local: rehearse a bad network, e.g. 'jitter=30ms,loss=2%' or mobile "
            "(see `rtc-voice serve --help`).",
        ),
    ] = None,
    drop_after: Annotated[
        float | None,
        typer.Option(
            "--drop-after",
            metavar="SECONDS",
            help="With --local: cut the call silently after this many seconds.",
        ),
    ] = None,
    model: ModelOpt = None,
    voice: VoiceOpt = None,
    instructions: Annotated[
        str | None,
        typer.Option(metavar="TEXT", help="System instructions.", show_default="the model's own"),
    ] = None,
    base_url: BaseUrlOpt = None,
    tool: Annotated[
        list[str] | None,
        typer.Option(
            "--tool",
            metavar="NAME",
            help="Offer only this tool (repeatable): get_time, \\[tools.NAME] or \\[mcp.NAME].",
        ),
    ] = None,
    no_tools: Annotated[
        bool, typer.Option("--no-tools", help="Offer the model no tools at all.")
    ] = False,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", help='Run tools with approval = "ask" without asking (needed in scripts).'
        ),
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Voice chat with a Realtime model: microphone, speakers, live transcript of both sides.

    Keys: [bold]m[/] mute, [bold]i[/] interrupt, [bold]t[/] or Enter type a message,
    [bold]l[/] event log, [bold]?[/] help, [bold]q[/] quit (with --ptt: [bold]space[/] talks).

    Examples:
      rtc-voice talk --local                    # offline, on the built-in server
      rtc-voice talk --voice cedar --transcript call.md
      rtc-voice talk --local --input q.wav --output none --transcript t.jsonl
      rtc-voice talk --local --input none --say "hi" --say "and bye" | head -1
      rtc-voice talk --tool weather --tool get_time     # only these tools

    Tools: get_time is built in; declare your own as \\[tools.NAME] in the
    config file (a command or an HTTP URL). A tool with approval = "ask" waits
    for [bold]y[/]/[bold]n[/] on screen; without a terminal it is declined unless --yes
    is given.
    """
    from rtc_voice.credentials import require_api_key
    from rtc_voice.errors import UsageError

    if ui not in ("full", "inline"):
        raise UsageError.bad_value("--ui", repr(ui), "full or inline")
    if max_duration is not None and max_duration <= 0:
        raise UsageError.bad_value("--max-duration", f"{max_duration:g}", "more than 0 seconds")
    blank = next((text for text in say or () if not text.strip()), None)
    if blank is not None:  # nothing would be sent, nor answered
        raise UsageError.bad_value("--say", repr(blank), "a message with some text")
    if token is not None and not token.startswith("ek_"):
        raise UsageError(
            "--token takes an ephemeral key (ek_…).",
            hint="Mint one with `rtc-voice token`; standard keys go in `auth login`.",
        )
    flags: dict[str, object] = {
        "model": model,
        "voice": voice,
        "instructions": instructions,
        "base_url": base_url,
    }
    if ptt:
        flags["turn_detection"] = "none"
    if no_aec:
        flags["echo_cancellation"] = "off"
    if no_reconnect:
        flags["reconnect"] = False
    if (network is not None or drop_after is not None) and not local:
        raise UsageError(
            "--network and --drop-after rehearse a bad network on the built-in server only.",
            hint="Add --local, or run `rtc-voice serve --network …` and point --base-url at it.",
        )
    if local and (base_url is not None or token is not None):
        given = "--base-url" if base_url is not None else "--token"
        raise UsageError(
            f"--local talks to the built-in server, which mints its own keys: {given} would "
            "be ignored.",
            hint="Drop --local to use another server (`rtc-voice serve` runs one), or drop "
            f"{given}.",
        )
    _network_rehearsal(network, drop_after, 1)
    settings = _settings(config, **flags)
    api_key = None if (local or token) else require_api_key()
    from rtc_voice.tools import build_registry
    from rtc_voice.ui.modes import choose_presenter
    from rtc_voice.ui.plain import LinePresenter

    tools = build_registry(
        settings,
        tool or (),
        no_tools=no_tools,
        secrets=tuple(s for s in (api_key.value if api_key else None, token) if s),
    )
    presenter = choose_presenter(ptt=ptt, as_json=as_json, inline=ui == "inline")
    if hasattr(presenter, "show"):
        presenter.show(settings.model, settings.voice)  # the screen first, then the rest loads
    try:
        code, call = _run_call(
            settings,
            presenter,
            api_key,
            local=local,
            token=token,
            input_=input_,
            output=output,
            transcript=transcript,
            record=record,
            ptt=ptt,
            say=say,
            exit_after_reply=exit_after_reply,
            max_duration=max_duration,
            as_json=as_json,
            tools=tools,
            approval="yes" if yes else ("no" if isinstance(presenter, LinePresenter) else "ask"),
            network=network,
            drop_after=drop_after,
        )
    finally:
        presenter.close(())  # a no-op after the call's own close; restores the terminal
    if call.failure is not None:
        raise call.failure  # one sentence and a hint; the traceback with --debug
    if call.end_reason and not getattr(presenter, "output_closed", False):
        _stderr().print(f"Call ended: {call.end_reason}.", style="dim")
        summary = call.summary()
        if summary:
            _stderr().print(summary, style="dim", highlight=False)
    if code:
        raise typer.Exit(int(code))


def _run_call(
    settings: Settings,
    presenter: Any,
    api_key: Any,
    *,
    local: bool,
    token: str | None,
    input_: str | None,
    output: str | None,
    transcript: Path | None,
    record: Path | None,
    ptt: bool,
    say: list[str] | None,
    exit_after_reply: bool,
    max_duration: float | None,
    as_json: bool,
    tools: Any,
    approval: Literal["ask", "yes", "no"],
    network: str | None,
    drop_after: float | None,
) -> tuple[int, Any]:
    from rtc_voice.call.supervisor import CallSupervisor, TalkOptions
    from rtc_voice.config import load_prices

    options = TalkOptions(
        local=local,
        token=token,
        input=input_,
        output=output,
        transcript=transcript,
        record=record,
        ptt=ptt,
        say=tuple(say or ()),
        exit_after_reply=exit_after_reply or not sys.stdin.isatty(),
        max_duration=max_duration,
        json=as_json,
        approval=approval,
        network=network,
        drop_after=drop_after,
    )
    call = CallSupervisor(
        settings,
        options,
        presenter,
        api_key=api_key,
        prices=load_prices(settings).get(settings.model),
        tools=tools,
    )
    import asyncio

    return asyncio.run(call.run()), call


@app.command()
def devices(
    probe: Annotated[
        bool,
        typer.Option("--probe", help="Open every device at 48 kHz and at its own rate; report."),
    ] = False,
    echo_test: Annotated[
        bool,
        typer.Option(
            "--echo-test",
            help="Play a 4 s sound on the speaker, record the microphone, and say how much "
            "echo there is and how much echo cancellation removes.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON for scripts.")] = False,
    config: ConfigOpt = None,
) -> None:
    """List microphones and speakers, and which ones rtc-voice would use.

    Pick devices with `talk --input/--output`, or audio.input_device and
    audio.output_device in the config: an index, or any part of the name (case
    does not matter).

    Examples: rtc-voice devices --probe;  rtc-voice devices --echo-test;
    rtc-voice talk --input usb --output 3
    """
    settings = _settings(config)
    if echo_test:
        _echo_test(settings, as_json)
        return
    from rtc_voice.ui.devices import show_devices

    show_devices(settings, probe=probe, as_json=as_json)


def _echo_test(settings: Settings, as_json: bool) -> None:
    from rtc_voice.audio import devices as audio
    from rtc_voice.audio.echo import TEST_SECONDS, echo_test

    found = audio.list_devices()
    mic = audio.select(settings.input_device, "input", found)
    speaker = audio.select(settings.output_device, "output", found)
    with _stderr().status(
        f"Playing a {TEST_SECONDS:g} s test sound on {speaker} and listening on {mic}…"
    ):
        import asyncio

        report = asyncio.run(echo_test(mic, speaker, noise_suppression=settings.noise_suppression))
    if as_json:
        print(
            json.dumps(
                {"microphone": mic.index, "speaker": speaker.index, **report.as_json()}, indent=2
            )
        )
        return
    out = _stdout()
    out.print(f"Speaker:    {speaker}   played at {report.played_dbfs:.0f} dBFS")
    out.print(f"Microphone: {mic}   heard {report.echo_dbfs:.0f} dBFS while it played")
    if report.heard:
        out.print(f"Echo delay: {report.delay_ms:.0f} ms (speaker callback to microphone callback)")
        out.print(f"Echo level: {report.echo_level_db:.0f} dB relative to what was played")
        out.print(f"Removed by echo cancellation: {report.removed_db:.0f} dB (last second)")
    out.print(report.verdict, style="bold")


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(
            metavar="ADDRESS",
            help="Address to bind; anything but loopback is reachable by others.",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(metavar="PORT", help="Port to listen on; 0 picks a free one.")
    ] = 8765,
    max_duration: Annotated[
        float,
        typer.Option(
            "--max-duration",
            metavar="SECONDS",
            help="Seconds before a call is closed (OpenAI: 3600).",
            show_default="3600",
        ),
    ] = 3600.0,
    network: Annotated[
        str | None,
        typer.Option(
            "--network",
            metavar="SPEC",
            help="Rehearse a bad network on the audio sent: 'jitter=30ms,loss=2%', "
            "'delay=40ms', or a preset: clean, lossy, jittery, mobile, bad.",
        ),
    ] = None,
    drop_after: Annotated[
        float | None,
        typer.Option(
            "--drop-after",
            metavar="SECONDS",
            help="Cut calls silently this many seconds after they start (no audio, events or "
            "ICE answers), as a lost network does.",
        ),
    ] = None,
    drops: Annotated[
        int,
        typer.Option(
            "--drops", metavar="N", help="With --drop-after: how many calls to cut, the first N."
        ),
    ] = 1,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            metavar="KEY",
            envvar=SERVE_KEY_ENV,
            show_default=False,
            help="Accept only this standard key (sk-…) for minting and hanging up, as a real "
            "server would. Without it any key shaped sk-… is accepted.",
        ),
    ] = None,
) -> None:
    """Run the offline local Realtime server: a stand-in for the OpenAI API (GA).

    It mints ek_ keys (for any key shaped sk-…, or only --api-key), answers
    WebRTC calls, detects speech by energy, and replies with fixed, honest
    speech; it understands no words. Point any Realtime client at it by
    changing only the base URL:

      rtc-voice serve
      OPENAI_API_KEY=sk-local rtc-voice token --base-url http://127.0.0.1:8765/v1
    """
    from rtc_voice.errors import NetworkError, UsageError
    from rtc_voice.localserver import LocalServer
    from rtc_voice.rtc.ice import is_loopback_host

    if not 0 <= port <= 65535:
        raise UsageError.bad_value("--port", str(port), "0 to 65535")
    if max_duration <= 0:
        raise UsageError.bad_value("--max-duration", f"{max_duration:g}", "more than 0 seconds")
    impairment = _network_rehearsal(network, drop_after, drops)
    if drop_after is None and _given(ctx, "drops"):
        raise UsageError(
            "--drops counts the calls that --drop-after cuts; without --drop-after no call is cut.",
            hint=f"Add --drop-after SECONDS: `rtc-voice serve --drop-after 10 --drops {drops}`.",
        )
    err = _stderr()

    def log(line: str) -> None:
        err.print(f"[dim]{datetime.now().strftime('%H:%M:%S')}[/] {line}", highlight=False)

    import asyncio

    terminated = False

    async def run() -> None:
        import signal

        server = LocalServer(
            host,
            port,
            max_call_seconds=max_duration,
            log=log,
            api_key=api_key or None,
            network=impairment,
            drop_after=drop_after,
            drops=drops,
        )
        try:
            await server.start()
        except OSError as exc:
            import errno

            in_use = exc.errno in (errno.EADDRINUSE, errno.EACCES)
            raise NetworkError(
                f"Cannot listen on {host}:{port}: {exc.strerror or exc}.",
                hint="Pick another --port (0 chooses a free one) or stop the other server."
                if in_use
                else "Check --host: it must be an address of this machine, such as 127.0.0.1.",
            ) from None
        stop = asyncio.Event()

        def on_sigterm() -> None:
            nonlocal terminated
            terminated = True
            stop.set()

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, on_sigterm)
        try:
            err.print(f"rtc-voice local server listening on [bold]{server.base_url}[/]")
            err.print(
                "An offline stand-in for the OpenAI Realtime API: it detects speech by energy "
                "and answers with fixed phrases; it does not understand words.",
                style="dim",
            )
            if not is_loopback_host(host):
                err.print(
                    f"[bold red]Warning:[/] listening on {host}: anyone who can reach this "
                    "machine can use this server, and it checks no real keys."
                )
            if impairment is not None:
                err.print(f"Rehearsing a bad network on outgoing audio: {impairment.describe()}.")
            if drop_after is not None:
                cut = "call" if drops == 1 else f"{drops} calls"
                err.print(f"Cutting the first {cut} silently after {drop_after:g} s.")
            err.print("Press Ctrl-C to stop.", style="dim")
            await stop.wait()
        finally:
            await server.stop()
            log("stopped")

    asyncio.run(run())
    if terminated:  # like a shell's 128 + SIGTERM, as the README promises
        raise typer.Exit(int(ExitCode.TERMINATED))


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the user set this parameter (on the command line or from the environment).
    By name: Typer carries its own copy of click, whose ParameterSource is not click's."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


def _network_rehearsal(network: str | None, drop_after: float | None, drops: int) -> Any:
    """The local server's --network / --drop-after / --drops, checked (usage errors)."""
    from rtc_voice.errors import UsageError

    if drop_after is not None and drop_after <= 0:
        raise UsageError.bad_value("--drop-after", f"{drop_after:g}", "more than 0 seconds")
    if drops < 1:
        raise UsageError.bad_value("--drops", str(drops), "1 or more")
    if network is None:
        return None
    from rtc_voice.localserver.netem import NetworkSpecError, parse_network  # only with --network

    try:
        return parse_network(network)
    except NetworkSpecError as exc:
        raise UsageError(
            f"Invalid --network: {exc}.", hint="Example: --network 'jitter=30ms,loss=2%'."
        ) from None


def _app_for(args: list[str]) -> typer.Typer:
    """The app to run `args` with. Typer builds the click command of every registered command
    (each option's parameter, help and coercion) before it dispatches, though a run uses one:
    when the command line names a command first (after `--debug` at most), a copy of `app`
    holding only that command or group is built instead. Anything else (no command, `--help`,
    `--version`, an unknown name, shell completion) gets the whole app, so the root's help and
    errors list every command."""
    if "_RTC_VOICE_COMPLETE" in os.environ:
        return app
    rest = list(args)
    while rest and rest[0] == "--debug":
        rest.pop(0)
    if not rest:
        return app
    name = rest[0]
    commands = [
        info
        for info in app.registered_commands
        if (info.name or get_command_name(getattr(info.callback, "__name__", ""))) == name
    ]
    groups = [info for info in app.registered_groups if info.name == name]
    if not commands and not groups:
        return app
    narrowed = copy.copy(app)
    narrowed.registered_commands = commands
    narrowed.registered_groups = groups
    return narrowed


def main() -> None:
    """Console-script entry point."""
    _app_for(sys.argv[1:])(prog_name="rtc-voice")
