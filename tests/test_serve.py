"""`rtc-voice serve` as a user runs it: a real process, used by the real `token` command."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rtc_voice.errors import ExitCode
from tests.support import Lines, rtc_voice


def test_serve_mints_for_the_token_command_and_stops_on_sigterm(
    served: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    proc, url = served
    env = {
        **os.environ,
        "OPENAI_API_KEY": "sk-local-anything-1234567890",
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    token = subprocess.run(
        rtc_voice("token", "--base-url", url, "--ttl", "30"),
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert token.returncode == 0, token.stderr
    assert re.fullmatch(r"ek_[0-9a-f]{32}\n", token.stdout)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == ExitCode.TERMINATED == 143
    assert "minted ek_…" in err and "stopped" in err
    assert "sk-local-anything" not in err


def test_serve_ctrl_c_exits_130(served: tuple[subprocess.Popen[str], str]) -> None:
    proc, _ = served
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == ExitCode.INTERRUPTED
    assert "Traceback" not in err


def test_serve_port_in_use_is_one_sentence(
    served: tuple[subprocess.Popen[str], str],
) -> None:
    _, url = served
    port = url.split(":")[2].split("/")[0]
    taken = subprocess.run(
        rtc_voice("serve", "--port", port), capture_output=True, text=True, timeout=30
    )
    assert taken.returncode == ExitCode.NETWORK
    assert f"Cannot listen on 127.0.0.1:{port}" in taken.stderr
    assert "Pick another --port" in taken.stderr
    assert "Traceback" not in taken.stderr


def test_serve_on_an_address_not_of_this_machine_points_at_the_host_not_the_port() -> None:
    # 192.0.2.1 (TEST-NET-1) is on no interface here: bind fails at once, nothing is sent
    done = subprocess.run(
        rtc_voice("serve", "--host", "192.0.2.1", "--port", "0"),
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == ExitCode.NETWORK
    assert "Cannot listen on 192.0.2.1:0" in done.stderr
    assert "Check --host" in done.stderr and "--port" not in done.stderr.split("Hint:")[1]
    assert "Traceback" not in done.stderr


@pytest.mark.timeout(40)
def test_serve_drops_without_drop_after_is_refused() -> None:
    # --drops alone would cut nothing: say so at once instead of serving without a word
    done = subprocess.run(
        rtc_voice("serve", "--port", "0", "--drops", "3"),
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert done.stderr.startswith("Error: --drops counts the calls that --drop-after cuts")
    assert "Hint: Add --drop-after SECONDS" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_warns_loudly_off_loopback(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        rtc_voice("serve", "--host", "0.0.0.0", "--port", "0"),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.stderr is not None
    seen = "".join(Lines(proc.stderr).until(lambda line: "Ctrl-C" in line, within=30))
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == ExitCode.TERMINATED
    assert "Warning: listening on 0.0.0.0" in seen


def test_serve_api_key_from_flag_or_environment_is_the_only_key(tmp_path: Path) -> None:
    wanted = "sk-serve-only-0123456789abcdef"
    for args, extra_env in (
        (["--api-key", wanted], {}),
        ([], {"RTC_VOICE_SERVE_API_KEY": wanted}),
    ):
        proc = subprocess.Popen(
            rtc_voice("serve", "--port", "0", *args),
            env={**os.environ, **extra_env, "XDG_CONFIG_HOME": str(tmp_path)},
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert proc.stderr is not None
            line = Lines(proc.stderr).until(lambda x: "listening on" in x, within=30)[-1]
            url = line.split("listening on ")[1].split()[0]
            codes = []
            for key in ("sk-someone-else-0123456789", wanted):
                codes.append(
                    subprocess.run(
                        rtc_voice("token", "--base-url", url),
                        env={**os.environ, "OPENAI_API_KEY": key, "XDG_CONFIG_HOME": str(tmp_path)},
                        capture_output=True,
                        text=True,
                        timeout=30,
                    ).returncode
                )
            assert codes == [ExitCode.AUTH, 0]
        finally:
            proc.kill()
            proc.communicate(timeout=20)


def _with_a_closed_pipe(argv: list[str], env: dict[str, str], *, stderr_too: bool) -> Any:
    """Run the CLI with stdout (and maybe stderr) a pipe whose reader is already gone, as
    after `… | head -2`; what it writes to stderr otherwise is returned."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            rtc_voice(*argv),
            stdout=write,
            stderr=write if stderr_too else subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
            timeout=30,
        )
    finally:
        os.close(write)


def test_a_closed_pipe_ends_quietly_with_exit_0(
    served: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    """`rtc-voice --help | head -2`, `rtc-voice token … --json 2>&1 | head`: the reader left, so
    the command stops without a traceback or error text and exits 0, as `talk` does when its
    reader leaves, never 1 as an unexpected failure."""
    _, url = served
    env = {
        **os.environ,
        "OPENAI_API_KEY": "sk-local-anything-1234567890",
        "XDG_CONFIG_HOME": str(tmp_path),
        "COLUMNS": "80",
    }
    token = ["token", "--base-url", url, "--ttl", "30", "--json"]
    for argv in (["--help"], ["talk", "--help"], ["config", "show"], token):
        out = _with_a_closed_pipe(argv, env, stderr_too=False)
        assert (out.returncode, out.stderr) == (0, ""), argv
    both = _with_a_closed_pipe(token, env, stderr_too=True)
    assert both.returncode == 0
