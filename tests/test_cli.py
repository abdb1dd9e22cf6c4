"""The CLI as a whole: version, help, exit codes, import weight, Ctrl-C, and no key leaks."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rtc_voice import __version__
from rtc_voice.app import app
from rtc_voice.errors import ExitCode
from tests.support import FAKE_KEY, MemoryKeyring, Reply, ScriptedServer, openai_error

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "cli" / "rtc_voice" / "data" / "hello.wav"


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"rtc-voice {__version__}\n")


def test_help_lists_every_command(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    for command in ("talk", "token", "devices", "auth", "config", "serve"):
        assert f"│ {command} " in result.stdout


def test_a_command_line_naming_a_command_builds_only_that_command() -> None:
    """Typer builds every command's options before dispatching; the entry point builds only
    the one named, and the whole app wherever the root itself answers."""
    from rtc_voice.app import _app_for

    def built(args: list[str]) -> list[str]:
        narrowed = _app_for(args)
        return [i.name or i.callback.__name__ for i in narrowed.registered_commands] + [
            str(i.name) for i in narrowed.registered_groups
        ]

    assert built(["talk", "--json"]) == ["talk"]
    assert built(["--debug", "devices", "--json"]) == ["devices"]
    assert built(["config", "show"]) == ["config"]
    everything = ["token", "talk", "devices", "serve", "auth", "config"]
    for args in ([], ["--help"], ["--help", "talk"], ["-V"], ["tlak"], ["--debug"]):
        assert sorted(built(args)) == sorted(everything), args
    assert _app_for(["--help"]) is app


NARROWED_CASES = [
    ["talk", "--help"],
    ["devices", "--help"],
    ["token", "--help"],
    ["serve", "--help"],
    ["auth", "--help"],
    ["auth", "login", "--help"],
    ["config"],
    ["config", "show", "--help"],
    ["talk", "--bogus"],
    ["talk", "--max-duration", "soon"],
    ["devices", "--jsn"],
    ["--debug", "serve", "--port", "x"],
    ["token", "extra"],
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("argv", NARROWED_CASES, ids=" ".join)
def test_help_errors_and_exit_codes_are_those_of_the_whole_app(argv: list[str]) -> None:
    """What the entry point prints and returns with only the named command built is what the
    whole app prints and returns."""
    whole = "import sys\nfrom rtc_voice.app import app\napp(sys.argv[1:], prog_name='rtc-voice')\n"
    env = {**os.environ, "COLUMNS": "100", "TERM": "dumb"}
    runs = [
        subprocess.run(
            [sys.executable, *start, *argv], capture_output=True, text=True, env=env, timeout=30
        )
        for start in (["-c", whole], ["-m", "rtc_voice"])
    ]
    assert runs[0].returncode in (0, 2), runs[0].stderr
    assert runs[0].stdout + runs[0].stderr  # something was printed
    assert [(r.returncode, r.stdout, r.stderr) for r in runs[1:]] == [
        (runs[0].returncode, runs[0].stdout, runs[0].stderr)
    ]


PARSE_ERRORS = [
    (["talk", "--max-duration", "abc"], "Invalid value for '--max-duration'", "rtc-voice talk"),
    (["talk", "--inpt", "x"], "No such option: --inpt.", "rtc-voice talk"),
    (["token", "--ttl"], "Option '--ttl' requires an argument.", "rtc-voice token"),
    (["--debug", "talk", "--ui"], "Option '--ui' requires an argument.", "rtc-voice talk"),
    (["auth", "login", "--bogus"], "No such option: --bogus.", "rtc-voice auth login"),
    (["tokn"], "No such command 'tokn'. Did you mean 'token'?", "rtc-voice"),
    (["talk", "--plain"], "No such option: --plain.", "rtc-voice talk"),
    (["auth", "logot"], "No such command 'logot'.", "rtc-voice auth"),
    (["token", "--ttl", "soon"], "Invalid value for '--ttl'", "rtc-voice token"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("argv", "sentence", "command"), PARSE_ERRORS, ids=[" ".join(case[0]) for case in PARSE_ERRORS]
)
def test_a_command_line_typer_cannot_parse_is_an_error_and_a_hint(
    argv: list[str], sentence: str, command: str
) -> None:
    """Typer's own parse errors read like every other error: `Error:` with one sentence,
    `Hint:` with the help of the command it is in, exit 2; no usage block, no box."""
    env = {**os.environ, "COLUMNS": "100", "TERM": "dumb"}
    run = subprocess.run(
        [sys.executable, "-m", "rtc_voice", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert run.returncode == int(ExitCode.USAGE) == 2
    assert run.stdout == ""
    error, hint = run.stderr.splitlines()
    assert error.startswith(f"Error: {sentence}") and error.endswith((".", "?"))
    assert not error.endswith("..") and "╭" not in run.stderr
    assert hint.startswith("Hint: ") and hint.endswith(f"See `{command} --help`.")


VOICE_ERRORS = [
    (["talk", "--local", "--voice"], "Option '--voice' requires an argument.", ""),
    (["token", "--voice"], "Option '--voice' requires an argument.", ""),
    (["talk", "--local", "--voice", "nobody"], "Invalid value 'nobody' for the flag --voice", ""),
    (["token", "--voice", "Marin"], "Invalid value 'Marin'", "Did you mean marin? "),
    (["talk", "--voice", "--local"], "The flag --voice needs a value, but --local follows", ""),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("argv", "sentence", "guess"), VOICE_ERRORS, ids=[" ".join(case[0]) for case in VOICE_ERRORS]
)
def test_a_missing_or_unknown_voice_lists_the_voices_in_the_hint(
    argv: list[str], sentence: str, guess: str, tmp_path: Path
) -> None:
    from rtc_voice.protocol.defaults import VOICES

    run = subprocess.run(
        [sys.executable, "-m", "rtc_voice", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300", "XDG_CONFIG_HOME": str(tmp_path)},
        timeout=30,
    )
    assert run.returncode == ExitCode.USAGE, run.stderr
    error, hint = run.stderr.splitlines()
    assert error.startswith(f"Error: {sentence}") and not error.endswith(("..", "…."))
    assert hint.startswith(f"Hint: {guess}Voices: {', '.join(VOICES)} (marin and cedar")


def test_an_unknown_option_close_to_a_real_one_is_named_in_the_hint() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "rtc_voice", "talk", "--inptu", "mic"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "100"},
        timeout=30,
    )
    assert run.returncode == 2
    hint = run.stderr.splitlines()[1]
    assert hint.startswith("Hint: Did you mean --input") and hint.endswith("talk --help`.")


def test_importing_and_running_help_loads_no_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from rtc_voice.app import app\n"
        "try:\n    app(['--help'], prog_name='rtc-voice')\nexcept SystemExit:\n    pass\n"
        "heavy = {'aiortc', 'av', 'numpy', 'sounddevice', 'httpx', 'keyring', 'aiohttp',\n"
        "         'livekit', 'pydantic'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_http_client_loads_without_httpx_command_line_tool() -> None:
    """httpx's __init__ loads its CLI (click, rich.syntax, pygments) unless that import fails;
    api.py makes it fail while httpx loads, on `talk`'s path, and only then: httpx keeps its
    `main` (its own fallback) and its CLI module can still be imported afterwards."""
    code = (
        "import sys\n"
        "import rtc_voice.api\n"
        "import httpx\n"
        "print('pygments' in sys.modules, 'httpx._main' in sys.modules, callable(httpx.main))\n"
        "import httpx._main\n"
        "print(callable(httpx._main.main))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True", "True"]


def test_the_http_client_is_ready_for_its_first_request_where_it_is_made(tmp_path: Path) -> None:
    """talk makes the HTTP client on a worker thread beside the PortAudio query; httpcore would
    load anyio's asyncio backend on the first request (the key request, ~20 ms at the head of
    the call). Made, the client has loaded it: its first request imports nothing."""
    code = (
        "import asyncio, json, sys\n"
        "from rtc_voice.api import RealtimeApi\n"
        "api = RealtimeApi(sys.argv[1])\n"
        "before = set(sys.modules)\n"
        "async def mint():\n"
        "    secret = await api.create_client_secret('sk-test', {'session': {}})\n"
        "    await api.aclose()\n"
        "    return secret.value\n"
        "value = asyncio.run(mint())\n"
        "print(json.dumps([value, sorted(set(sys.modules) - before)]))\n"
    )
    with ScriptedServer() as server:
        server.script(Reply(200, {"value": "ek_ready", "expires_at": 2**31, "session": {}}))
        out = subprocess.run(
            [sys.executable, "-c", code, server.base_url],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    assert json.loads(out) == ["ek_ready", []]


# Python source for `python -c`: runs the console-script entry point (`main`, which builds only
# the command it runs) on the arguments after the code, and prints its exit code as `exit N`;
# a test appends what it prints after that.
RUN_CLI = (
    "import sys\n"
    "from rtc_voice.app import main\n"
    "try:\n    main()\nexcept SystemExit as exc:\n"
    "    print('exit', exc.code)\n"
)


def _talk_refused_at_minting(code: str, tmp_path: Path) -> Any:
    """Run `code` (which calls the CLI, then prints one JSON line) as `talk` against a local
    server that refuses the key; check it got as far as minting; return that JSON."""
    with ScriptedServer() as server:
        server.script(Reply(401, openai_error("Incorrect API key provided.", "invalid_api_key")))
        env = {**os.environ, "OPENAI_API_KEY": FAKE_KEY, "XDG_CONFIG_HOME": str(tmp_path)}
        argv = ["talk", "--base-url", server.base_url, "--json", "--input", "none"]
        out = subprocess.run(
            [sys.executable, "-c", code, *argv],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
    lines = out.stdout.strip().splitlines()
    assert lines[-2] == f"exit {int(ExitCode.AUTH)}", out.stderr  # it got as far as minting
    return json.loads(lines[-1])


def test_talk_to_a_remote_server_loads_no_local_server(tmp_path: Path) -> None:
    """The call's set-up time is the user's wait: `talk` without --local must not load the
    local server (aiohttp and the server's modules) just to check its flags, nor pydantic to
    read text options."""
    code = (
        RUN_CLI + "import json\n"
        "watched = ('aiortc', 'aiohttp', 'rtc_voice.localserver', 'pydantic')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(watched))))\n"
    )
    loaded = _talk_refused_at_minting(code, tmp_path)
    assert "aiortc" in loaded  # the check sees real imports: the offer was being made
    assert [m for m in loaded if not m.startswith("aiortc")] == []


def test_talk_loads_no_machinery_it_was_not_asked_for(tmp_path: Path) -> None:
    """Up to the call, `talk` with only get_time, no --transcript, no --network and no audio
    file loads neither the tool runners, the MCP table parser, the transcript writer, the
    network rehearsal nor the audio file reader and writers: each loads where it is first
    used."""
    code = (
        RUN_CLI + "import json\n"
        "watched = ('rtc_voice.tools.runners', 'rtc_voice.tools.mcp', 'rtc_voice.transcript',\n"
        "           'rtc_voice.localserver', 'rtc_voice.call.supervisor', 'rtc_voice.audio.')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(watched))))\n"
    )
    loaded = _talk_refused_at_minting(code, tmp_path)
    # it got to the call and opened the speaker (--input none): the check sees real imports
    assert {"rtc_voice.call.supervisor", "rtc_voice.audio.io"} <= set(loaded)
    unasked = (
        "rtc_voice.tools.",
        "rtc_voice.transcript",
        "rtc_voice.localserver",
        "rtc_voice.audio.wavfile",
    )
    assert [m for m in loaded if m.startswith(unasked)] == []


def test_talk_loads_the_media_stack_off_the_event_loop(tmp_path: Path) -> None:
    """aiortc, numpy and httpx take a few hundred ms to import: `talk` loads them on a worker
    thread, so the screen's event loop keeps drawing meanwhile."""
    code = (
        "import sys, threading\n"
        "heavy = ('aiortc', 'numpy', 'httpx')\n"
        "where = {}\n"
        "class Watch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name in heavy:\n"
        "            where.setdefault(name, threading.current_thread().name)\n"
        "sys.meta_path.insert(0, Watch())\n" + RUN_CLI + "import json\n"
        "print(json.dumps(where))\n"
    )
    where = _talk_refused_at_minting(code, tmp_path)
    assert set(where) == {"aiortc", "numpy", "httpx"}
    assert "MainThread" not in where.values(), where


def test_options_given_or_not_keep_typers_checks_and_values(runner: CliRunner) -> None:
    """Options left out are not coerced (no pydantic); given ones still are, by Typer."""
    bad = runner.invoke(app, ["token", "--ttl", "soon"], env={"COLUMNS": "120"})
    assert bad.exit_code == 2
    assert "Invalid value for '--ttl'" in bad.output and "integer" in bad.output
    negative = runner.invoke(app, ["talk", "--max-duration", "-1"])
    assert negative.exit_code == int(ExitCode.USAGE)
    assert "Invalid value -1 for the flag --max-duration" in negative.output
    shown = runner.invoke(
        app, ["config", "show", "--json"], env={"RTC_VOICE_CONFIG": "", "COLUMNS": "120"}
    )
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["model"]["source"] == "default"


def test_a_plain_number_option_loads_no_pydantic() -> None:
    """`talk --max-duration 60` or `token --ttl 600` paid for importing pydantic (about 60 ms)
    to read a number; a plain number is read without it."""
    code = RUN_CLI + "print('pydantic' in sys.modules)\n"
    argv = ["talk", "--max-duration", "60", "--token", "sk-not-ephemeral"]
    out = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=30
    )
    assert "--token takes an ephemeral key" in out.stderr  # read the number, went on
    assert out.stdout.split() == ["exit", str(int(ExitCode.USAGE)), "False"]


NUMBERS = ["0", "7", "60", "8765", "-1", "1.5", "0.25", "-0.5", "12.000", "007", "1e3", "inf"]
NUMBERS += ["nan", " 5", "5 ", "1_000", "+5", "1.", ".5", "abc", "", "\u0663", "9" * 19, "9" * 18]


@pytest.mark.parametrize("command, option", [("talk", "max_duration"), ("serve", "port")])
def test_plain_numbers_are_read_as_typers_own_coercion_reads_them(
    command: str, option: str
) -> None:
    """The entry point reads plain numbers itself (no pydantic); for every text, and for the
    option's default, it answers what Typer's coercion answers: the same value of the same
    type, or the same error."""
    import typer.main
    from typer._coercion import build_runtime_param

    from rtc_voice.app import _CoerceGivenValues

    click_command = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    param = next(p for p in click_command.params if p.name == option)
    ctx = typer.Context(click_command)

    def answer(coercion: Any, value: object) -> tuple[str, object]:
        try:
            result = coercion.coerce(value, param=param, ctx=ctx)
        except Exception as exc:
            return type(exc).__name__, str(exc)
        return type(result).__name__, repr(result)  # repr: nan == nan

    values: list[object] = [*NUMBERS, param.default]
    ours = [answer(_CoerceGivenValues(build_runtime_param), value) for value in values]
    typers = [answer(build_runtime_param(param.type_descriptor), value) for value in values]
    assert ours == typers
    assert ("float", "7.0") in typers or ("int", "7") in typers  # a plain number was read


def test_ctrl_c_exits_130_without_traceback(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        server.script(Reply(200, {"value": "ek_x", "expires_at": 1}, delay=5))
        env = {**os.environ, "OPENAI_API_KEY": FAKE_KEY, "XDG_CONFIG_HOME": str(tmp_path)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "rtc_voice", "token", "--base-url", server.base_url],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 20
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.requests, "the request never arrived"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == ExitCode.INTERRUPTED == 130
    assert "Traceback" not in err and "Interrupted" in err
    assert FAKE_KEY not in out + err


def test_the_standard_key_never_appears_in_any_output(
    runner: CliRunner,
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    isolated_env: Path,
) -> None:
    """Every command and error path with a key present, with and without --debug tracebacks."""
    seen: list[str] = []

    def run(args: list[str], stdin: str | None = None) -> None:
        for debug in ([], ["--debug"]):
            result = runner.invoke(app, [*debug, *args], input=stdin)
            seen.append(result.output + result.stderr + repr(result.exception))

    run(["auth", "login"], stdin=FAKE_KEY + "\n")
    run(["auth", "status"])
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    run(["auth", "status"])
    run(["config", "show"])
    run(["config", "init"])
    with ScriptedServer() as server:
        echoed = openai_error(f"Incorrect API key provided: {FAKE_KEY[:3]}…", "invalid_api_key")
        for reply in (
            Reply(200, {"value": "ek_fine", "expires_at": int(time.time()) + 60}),
            Reply(401, echoed),
            Reply(400, openai_error("bad", "unknown_parameter", "session.x")),
            Reply(429, openai_error("slow down", None), {"retry-after": "0"}),
            Reply(500, "oops", {"retry-after": "0"}),
            Reply(200, "not json"),
        ):
            server.script(reply)
            run(["token", "--base-url", server.base_url])
            run(["token", "--json", "--base-url", server.base_url])
        server.script(Reply(401, echoed))
        run(["talk", "--base-url", server.base_url, "--input", str(HELLO), "--output", "none"])
        dead = server.base_url
    run(["token", "--base-url", dead])
    run(["token", "--base-url", "http://no-such-host.invalid/v1"])
    run(["talk", "--base-url", dead, "--input", str(HELLO), "--output", "none"])
    assert memory_keyring.store  # the login really happened, so the key was in play
    for text in seen:
        assert FAKE_KEY not in text
        assert FAKE_KEY[8:24] not in text
    assert FAKE_KEY not in isolated_env.read_text()


def test_short_version_flag(runner: CliRunner) -> None:
    result = runner.invoke(app, ["-V"])
    assert (result.exit_code, result.stdout) == (0, f"rtc-voice {__version__}\n")


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--debug", "token", "--ttl", "5"], {}),
        (["token", "--ttl", "5", "--debug"], {}),
        (["token", "--debug", "--ttl", "5"], {}),
        (["token", "--ttl", "5"], {"RTC_VOICE_DEBUG": "1"}),
    ],
)
def test_debug_before_or_after_the_subcommand_or_from_the_environment(
    runner: CliRunner, args: list[str], env: dict[str, str]
) -> None:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "Traceback" in result.stderr and "for the flag --ttl" in result.stderr
    assert "Traceback" not in runner.invoke(app, ["token", "--ttl", "5"]).stderr


def test_shell_completion_works(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    script = subprocess.run(
        [sys.executable, "-m", "rtc_voice"],
        env={**env, "_RTC_VOICE_COMPLETE": "source_bash"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert script.returncode == 0, script.stderr
    assert "_RTC_VOICE_COMPLETE=complete_bash" in script.stdout
    words = subprocess.run(
        [sys.executable, "-m", "rtc_voice"],
        env={
            **env,
            "_RTC_VOICE_COMPLETE": "complete_bash",
            "COMP_WORDS": "rtc-voice ta",
            "COMP_CWORD": "1",
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert words.stdout.split() == ["talk"], words.stderr


@pytest.mark.parametrize(
    ("args", "defaults"),
    [
        ([], []),
        (["talk"], ["marin", "gpt-realtime", "the system's microphone"]),
        (["token"], ["600", "marin", "https://api.openai.com/v1"]),
        (["serve"], ["127.0.0.1", "8765", "3600", "1"]),
        (["config", "show"], []),
        (["devices"], []),
    ],
)
def test_help_shows_no_bool_metavar_on_flags_and_shows_defaults(
    runner: CliRunner, args: list[str], defaults: list[str]
) -> None:
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout
    for default in defaults:  # the value itself, not "(marin)" nor "3600.0"
        assert f"[default: {default}]" in result.stdout
    assert "[default: (" not in result.stdout


@pytest.mark.parametrize("command", ["talk", "token", "serve"])
def test_help_names_what_each_option_takes(runner: CliRunner, command: str) -> None:
    """A metavar that teaches (SECONDS, FILE, DEVICE|FILE|none, URL), not Python's types."""
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for internal in ("<str>", "<int>", "<float>", "<path>", "<file>"):
        assert internal not in result.stdout, internal
    wanted = {
        "talk": ["--input  DEVICE|FILE|none", "--max-duration  SECONDS", "--base-url  URL"],
        "token": ["--ttl  SECONDS", "--voice  VOICE", "--config  FILE"],
        "serve": ["--port  PORT", "--drop-after  SECONDS", "--drops  N"],
    }[command]
    squeezed = re.sub(r" {2,}", "  ", result.stdout)
    for option in wanted:
        assert option in squeezed, option


HELP_COMMANDS = [[], ["talk"], ["token"], ["serve"], ["devices"], ["auth", "logout"]]


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=lambda c: " ".join(c) or "rtc-voice")
def test_help_paragraphs_keep_their_lines_at_80_columns(
    runner: CliRunner, command: list[str]
) -> None:
    """A description paragraph broken by hand is not broken again by an 80-column terminal
    (which left 'turn detection,' alone on a line): it reads the same as at 200 columns."""

    def paragraphs(columns: int) -> list[list[str]]:
        result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": str(columns)})
        assert result.exit_code == 0, result.output
        head = result.stdout.split("╭─")[0]
        found: list[list[str]] = [[]]
        for line in head.splitlines():
            if line.strip():
                found[-1].append(line.rstrip())
            elif found[-1]:
                found.append([])
        return [p for p in found if p][2:]  # past the usage line and the one-line summary

    assert paragraphs(80) == paragraphs(200)
