"""`rtc-voice auth`: key storage in the keyring, lookup order, redaction, headless failures."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from keyring.backends.fail import Keyring as NoKeyring
from typer.testing import CliRunner

from rtc_voice.app import app
from rtc_voice.credentials import KEYRING_SERVICE, KEYRING_USERNAME, find_api_key, redact
from rtc_voice.errors import ExitCode
from tests.support import FAKE_KEY, MemoryKeyring


def test_redact_keeps_prefix_and_last_four() -> None:
    assert redact(FAKE_KEY) == "sk-…nary"
    assert redact("short") == "…"


def test_login_from_stdin_stores_key_then_status_and_logout(
    runner: CliRunner, memory_keyring: MemoryKeyring
) -> None:
    login = runner.invoke(app, ["auth", "login"], input=FAKE_KEY + "\n")
    assert login.exit_code == 0, login.output
    assert memory_keyring.store[(KEYRING_SERVICE, KEYRING_USERNAME)] == FAKE_KEY
    assert "sk-…nary" in login.stderr

    status = runner.invoke(app, ["auth", "status"])
    assert status.exit_code == 0
    assert status.stdout.strip() == (
        "API key sk-…nary from the OS keyring (support MemoryKeyring), service rtc-voice."
    )

    logout = runner.invoke(app, ["auth", "logout"])
    assert logout.exit_code == 0 and "Removed" in logout.stderr
    assert memory_keyring.store == {}
    again = runner.invoke(app, ["auth", "logout"])
    assert again.exit_code == 0 and "nothing to remove" in again.stderr


@pytest.mark.parametrize(
    ("typed", "fragment"),
    [
        ("ek_0123456789abcdef0123", "ephemeral key"),
        ("hello world", "does not look like an OpenAI API key"),
        ("", "No key was entered"),
    ],
)
def test_login_rejects_what_is_not_a_standard_key(
    runner: CliRunner, memory_keyring: MemoryKeyring, typed: str, fragment: str
) -> None:
    result = runner.invoke(app, ["auth", "login"], input=typed + "\n")
    assert result.exit_code == ExitCode.AUTH
    assert fragment in result.stderr
    assert memory_keyring.store == {}


def test_environment_key_wins_and_status_says_it_overrides(
    runner: CliRunner, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory_keyring.set_password(KEYRING_SERVICE, KEYRING_USERNAME, "sk-stored-" + "x" * 20)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    key = find_api_key()
    assert key is not None and (key.value, key.origin) == (FAKE_KEY, "env")
    assert FAKE_KEY not in repr(key)
    status = runner.invoke(app, ["auth", "status"])
    assert "OPENAI_API_KEY environment variable (it overrides" in status.stdout


def test_no_key_anywhere_names_every_way_out(runner: CliRunner) -> None:
    result = runner.invoke(app, ["auth", "status"])
    assert result.exit_code == ExitCode.AUTH == 4
    assert "No OpenAI API key found." in result.stderr
    for way in ("auth login", "OPENAI_API_KEY", "--local"):
        assert way in result.stderr


def test_headless_without_keyring_backend_is_one_sentence(runner: CliRunner) -> None:
    keyring.set_keyring(NoKeyring())
    status = runner.invoke(app, ["auth", "status"])
    assert status.exit_code == ExitCode.AUTH
    assert "no usable OS keyring" in status.stderr and "OPENAI_API_KEY" in status.stderr
    assert "Traceback" not in status.output

    login = runner.invoke(app, ["auth", "login"], input=FAKE_KEY + "\n")
    assert login.exit_code == ExitCode.AUTH
    assert "No usable OS keyring was found to store the API key." in login.stderr
    assert "OPENAI_API_KEY" in login.stderr


def test_headless_keyring_is_not_needed_when_the_env_has_a_key(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring.set_keyring(NoKeyring())
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    status = runner.invoke(app, ["auth", "status"])
    assert status.exit_code == 0
    assert "sk-…nary from the OPENAI_API_KEY environment variable." in status.stdout


def test_login_with_stdin_closed_is_one_sentence(tmp_path: Path) -> None:
    """`rtc-voice auth login 0<&-`: Python then has no sys.stdin at all."""
    import os
    import subprocess

    from tests.support import rtc_voice

    done = subprocess.run(
        rtc_voice("auth", "login"),
        env={
            **os.environ,
            "XDG_CONFIG_HOME": str(tmp_path),
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        },
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.close(0),
    )
    assert done.returncode == ExitCode.AUTH, done.stderr
    assert "Error: No key was given: standard input is closed." in done.stderr
    assert "Traceback" not in done.stderr


def test_a_plaintext_backend_is_named_with_its_file_and_a_warning(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keyrings.alt.file import PlaintextKeyring

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    backend = PlaintextKeyring()
    keyring.set_keyring(backend)
    login = runner.invoke(app, ["auth", "login"], input=FAKE_KEY + "\n")
    assert login.exit_code == 0, login.output
    assert Path(backend.file_path).is_file()  # where the key really went
    said = " ".join(login.stderr.split())
    assert f"in the plain-text file {backend.file_path} (base64, not encrypted" in said
    assert "Warning: anyone who can read that file can use your key" in said
    assert "OS keyring" not in said
    status = runner.invoke(app, ["auth", "status"])
    assert "plain-text file" in status.stdout
    logout = runner.invoke(app, ["auth", "logout"])
    said = " ".join(logout.stderr.split())
    assert (
        logout.exit_code == 0
        and f"Removed the API key from the plain-text file {backend.file_path}" in said
    )
    assert "OS keyring" not in said  # it named the wrong store
    again = " ".join(runner.invoke(app, ["auth", "logout"]).stderr.split())
    assert "No API key was stored in the plain-text file" in again


class LockedKeyring(MemoryKeyring):
    """A real backend whose collection is locked, as Secret Service reports it."""

    def get_password(self, service: str, username: str) -> str | None:
        from keyring.errors import KeyringLocked

        raise KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service: str, username: str, password: str) -> None:
        self.get_password(service, username)


def test_a_locked_keyring_asks_to_unlock_it_not_to_install_one(runner: CliRunner) -> None:
    keyring.set_keyring(LockedKeyring())
    for args in (["auth", "status"], ["auth", "login"]):
        result = runner.invoke(app, args, input=FAKE_KEY + "\n")
        assert result.exit_code == ExitCode.AUTH
        said = " ".join(result.stderr.split())
        assert "keyring is locked" in said and "Unlock it" in said
        assert "keyrings.alt" not in said and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("prefix", "command"),
    [
        ("/home/u/.local/share/pipx/venvs/rtc-voice", "pipx inject rtc-voice keyrings.alt"),
        ("/home/u/.local/share/uv/tools/rtc-voice", "uv tool install --with keyrings.alt"),
        ("/work/project/.venv", "-m pip install keyrings.alt"),
    ],
)
def test_the_backend_hint_reaches_the_environment_rtc_voice_runs_in(
    prefix: str, command: str
) -> None:
    from rtc_voice.credentials import backend_install_hint

    assert command in backend_install_hint(prefix)
