"""The entry point's quick path for plain device listings: the same bytes and exit codes as the
Typer app, on a pipe and on a terminal, without loading Typer; everything else goes to Typer."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.pulse import PrivatePulse

pytestmark = pytest.mark.audio

# Each runs the CLI on the arguments after the code, as the console script does, and at exit
# (after everything the run printed) writes to the file $ENTRY_TEST_MARK whether Typer was
# loaded: the way the command line went.
_MARK = (
    "import atexit, os, sys\n"
    "def _mark():\n"
    "    with open(os.environ['ENTRY_TEST_MARK'], 'w') as f:\n"
    "        f.write(json.dumps(sorted(m for m in sys.modules\n"
    "                                  if m.split('.')[0] in ('typer', 'click', 'pydantic')\n"
    "                                  or m == 'rtc_voice.app')))\n"
    "import json\n"
    "atexit.register(_mark)\n"
)
ENTRY = _MARK + "import runpy\nrunpy.run_module('rtc_voice', run_name='__main__')\n"
TYPER = _MARK + "from rtc_voice.app import main\nmain()\n"

GOOD = '[audio]\ninput_device = "default"\n'
BAD_DEVICE = '[audio]\ninput_device = "theremin"\noutput_device = "99"\n'
BROKEN = '[audio]\ninput_device = "default\n'  # an unterminated string: TOML error, line 2
UNKNOWN_KEY = '[audio]\ninput_devic = "default"\n'

# (id, arguments, environment added, whether the quick path takes it); FILE:name is the path
# of a config file written from FILES (or a missing one, or a directory) in the test's folder.
FILES = {"good.toml": GOOD, "bad.toml": BAD_DEVICE, "broken.toml": BROKEN, "typo.toml": UNKNOWN_KEY}
CASES: list[tuple[str, list[str], dict[str, str], bool]] = [
    ("table", ["devices"], {}, True),
    ("json", ["devices", "--json"], {}, True),
    ("config", ["devices", "--config", "FILE:good.toml"], {}, True),
    ("config=", ["devices", "--config=FILE:good.toml"], {}, True),
    ("json config", ["devices", "--json", "--config", "FILE:good.toml"], {}, True),
    ("config json", ["devices", "--config=FILE:good.toml", "--json"], {}, True),
    ("missing config", ["devices", "--config", "FILE:missing.toml"], {}, True),
    ("missing config json", ["devices", "--json", "--config=FILE:missing.toml"], {}, True),
    ("broken config", ["devices", "--config", "FILE:broken.toml"], {}, True),
    ("unknown key", ["devices", "--json", "--config", "FILE:typo.toml"], {}, True),
    ("bad devices", ["devices", "--config", "FILE:bad.toml"], {}, True),
    ("bad devices json", ["devices", "--json", "--config=FILE:bad.toml"], {}, True),
    ("env config", ["devices"], {"RTC_VOICE_CONFIG": "FILE:good.toml"}, True),
    ("env bad devices", ["devices"], {"RTC_VOICE_CONFIG": "FILE:bad.toml"}, True),
    ("env missing", ["devices", "--json"], {"RTC_VOICE_CONFIG": "FILE:missing.toml"}, True),
    ("flag over env", ["devices", "--config", "FILE:bad.toml"], {"RTC_VOICE_CONFIG": "x"}, True),
    ("env device", ["devices"], {"RTC_VOICE_AUDIO_OUTPUT_DEVICE": "theremin"}, True),
    ("env bad value", ["devices"], {"RTC_VOICE_TOKEN_TTL": "soon"}, True),
    ("env unknown", ["devices", "--json"], {"RTC_VOICE_AUDIO_INPUT": "usb"}, True),
    ("default file", ["devices"], {"DEFAULT_CONFIG": BAD_DEVICE}, True),
    ("default file broken", ["devices", "--json"], {"DEFAULT_CONFIG": BROKEN}, True),
    ("forced colour", ["devices"], {"FORCE_COLOR": "1"}, True),
    ("no colour", ["devices", "--config", "FILE:missing.toml"], {"NO_COLOR": "1"}, True),
    ("narrow", ["devices", "--config", "FILE:bad.toml"], {"COLUMNS": "40"}, True),
    ("unknown flag", ["devices", "--jsn"], {}, False),
    ("extra argument", ["devices", "speakers"], {}, False),
    ("json twice", ["devices", "--json", "--json"], {}, False),
    (
        "config twice",
        ["devices", "--config=FILE:good.toml", "--config", "FILE:bad.toml"],
        {},
        False,
    ),
    ("config without value", ["devices", "--config"], {}, False),
    ("empty config", ["devices", "--config="], {}, False),
    ("config a directory", ["devices", "--config", "FILE:."], {}, False),
    ("help", ["devices", "--help"], {}, False),
    ("debug first", ["--debug", "devices"], {}, False),
    ("debug after", ["devices", "--config", "FILE:broken.toml", "--debug"], {}, False),
    ("debug env", ["devices", "--config", "FILE:missing.toml"], {"RTC_VOICE_DEBUG": "1"}, False),
    ("probe", ["devices", "--probe", "--json"], {}, False),
    ("another command", ["config", "path"], {}, False),
    ("no command", [], {}, False),
]


def _setup(
    tmp_path: Path, argv: list[str], extra: dict[str, str]
) -> tuple[list[str], dict[str, str]]:
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    home = tmp_path / "home"
    (home / "rtc-voice").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTC_VOICE_")}
    env.update(XDG_CONFIG_HOME=str(home), ENTRY_TEST_MARK=str(tmp_path / "mark"))
    env.pop("COLUMNS", None)
    env.pop("LINES", None)

    def place(value: str) -> str:
        return value.replace("FILE:", str(tmp_path) + os.sep).removesuffix(os.sep + ".")

    for key, value in extra.items():
        if key == "DEFAULT_CONFIG":
            (home / "rtc-voice" / "config.toml").write_text(value)
        else:
            env[key] = place(value)
    return [place(a) for a in argv], env


def _on_pipe(code: str, argv: list[str], env: dict[str, str]) -> tuple[int, str, str, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", code, *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**env, "TERM": "dumb"},
        timeout=60,
    )
    return (
        out.returncode,
        out.stdout,
        out.stderr,
        json.loads(Path(env["ENTRY_TEST_MARK"]).read_text()),
    )


def _on_terminal(code: str, argv: list[str], env: dict[str, str]) -> tuple[int, bytes, list[str]]:
    """Run on a new 90x30 pseudo-terminal (stdin, stdout and stderr), in colour; all it printed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 90, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**env, "TERM": "xterm-256color"},
    )
    os.close(slave)
    printed = b""
    try:
        while chunk := os.read(master, 65536):
            printed += chunk
    except OSError:  # EIO: the terminal's other end closed
        pass
    finally:
        os.close(master)
    code_ = proc.wait(timeout=60)
    return code_, printed, json.loads(Path(env["ENTRY_TEST_MARK"]).read_text())


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("argv", "extra", "quick"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_entry_point_prints_what_the_typer_app_prints(
    pulse: PrivatePulse, tmp_path: Path, argv: list[str], extra: dict[str, str], quick: bool
) -> None:
    """Byte for byte, stdout and stderr apart on a pipe and together on a terminal, with the
    same exit code; and the quick path is taken exactly where it should be."""
    args, env = _setup(tmp_path, argv, extra)
    *typer_pipe, typer_loaded = _on_pipe(TYPER, args, env)
    *entry_pipe, entry_loaded = _on_pipe(ENTRY, args, env)
    assert "typer" in typer_loaded and "rtc_voice.app" in typer_loaded
    assert (entry_loaded == []) is quick, entry_loaded
    assert typer_pipe[1] + typer_pipe[2]  # something was printed
    assert entry_pipe == typer_pipe
    *typer_tty, _ = _on_terminal(TYPER, args, env)
    *entry_tty, entry_loaded = _on_terminal(ENTRY, args, env)
    assert (entry_loaded == []) is quick, entry_loaded
    assert typer_tty[1]
    assert entry_tty == typer_tty


def test_the_cases_cover_success_errors_and_colour(pulse: PrivatePulse, tmp_path: Path) -> None:
    """The comparisons above compare something: tables, JSON, each kind of error with its exit
    code, and colour on a terminal."""
    seen = {}
    for name, argv, extra, _ in CASES:
        if name in (
            "table",
            "json",
            "bad devices",
            "missing config",
            "broken config",
            "unknown flag",
        ):
            folder = tmp_path / name.replace(" ", "-")
            folder.mkdir()
            args, env = _setup(folder, argv, extra)
            seen[name] = _on_pipe(ENTRY, args, env)[:3]
    assert seen["table"][0] == 0 and "Microphone: #" in seen["table"][1]
    assert json.loads(seen["json"][1])["selected"]["input"] is not None
    assert seen["bad devices"][0] == 0
    assert "Microphone: No audio device matches 'theremin'." in seen["bad devices"][1]
    assert "Speaker: There is no audio device #99." in seen["bad devices"][1]
    assert seen["missing config"][0] == 3 and seen["missing config"][2].startswith("Error: Config")
    assert seen["broken config"][0] == 3 and "broken.toml:2:" in seen["broken config"][2]
    assert seen["unknown flag"][0] == 2 and "--jsn" in seen["unknown flag"][2]
    folder = tmp_path / "tty"
    folder.mkdir()
    args, env = _setup(folder, ["devices", "--config", "FILE:missing.toml"], {})
    code, printed, _ = _on_terminal(ENTRY, args, env)
    assert code == 3 and b"\x1b[1;31mError:" in printed


def test_a_plain_listing_loads_neither_typer_nor_the_app(
    pulse: PrivatePulse, tmp_path: Path
) -> None:
    """The installed console script's target lists devices (table and JSON) without loading
    Typer, click, pydantic or the Typer app module, nor, with no config file to read, the TOML
    parser, difflib or shlex, nor rich for JSON; any other command line still gets Typer."""
    code = (
        "import sys\n"
        "from importlib.metadata import entry_points\n"
        "(script,) = entry_points(group='console_scripts', name='rtc-voice')\n"
        "try:\n    script.load()()\nexcept SystemExit as exc:\n    print('exit', exc.code)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'click', 'pydantic')"
        " or m == 'rtc_voice.app'))\n"
        "text = ('tomllib', 'difflib', 'shlex')  # importlib.metadata loads textwrap\n"
        "print(sorted(m for m in text if m in sys.modules))\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'rich'}))\n"
    )
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "COLUMNS": "120"}
    env.pop("RTC_VOICE_CONFIG", None)

    def run(*argv: str) -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", code, *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        return out.stdout.strip().splitlines()

    table = run("devices")  # no config file: no TOML parser, no other text tools either
    assert "Audio devices" in table[0] and "Microphone: #" in "\n".join(table)
    assert table[-4:] == ["exit 0", "[]", "[]", "['rich']"]
    listing = run("devices", "--json")
    assert json.loads("\n".join(listing[:-4]))["devices"]
    assert listing[-4:] == ["exit 0", "[]", "[]", "[]"]
    (tmp_path / "rtc-voice").mkdir()
    (tmp_path / "rtc-voice" / "config.toml").write_text('[audio]\ninput_device = "default"\n')
    assert run("devices")[-4:-1] == ["exit 0", "[]", "['tomllib']"]  # the check sees imports
    other = run("devices", "--jsn")
    assert other[-4] == "exit 2" and "typer" in other[-3] and "rtc_voice.app" in other[-3]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "argv",
    [["devices"], ["devices", "--json"], ["devices", "--config", "missing.toml"]],
    ids=" ".join,
)
def test_a_reader_that_went_away_ends_both_paths_alike(
    pulse: PrivatePulse, tmp_path: Path, argv: list[str]
) -> None:
    """Output into a pipe nobody reads (`| head -c 0` that has exited): the same exit code and
    the same stderr (no traceback) on both paths."""
    args, env = _setup(tmp_path, argv, {})
    runs = []
    for code in (TYPER, ENTRY):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            out = subprocess.run(
                [sys.executable, "-c", code, *args],
                stdin=subprocess.DEVNULL,
                stdout=write_end,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                timeout=30,
            )
        finally:
            os.close(write_end)
        runs.append((out.returncode, out.stderr))
    expected = 3 if "--config" in argv else 0  # a missing config file is still an error
    assert runs[0][0] == expected and "Traceback" not in runs[0][1]  # quietly, as every command
    assert runs[1] == runs[0]
