"""Settings layering, sources, validation messages and the generated example file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtc_voice.app import app
from rtc_voice.config import FIELDS, Settings, example_toml, load_settings, read_file, voice_hint
from rtc_voice.errors import ConfigError, ExitCode, UsageError

ROOT = Path(__file__).resolve().parent.parent


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_when_no_file_exists(isolated_env: Path) -> None:
    settings = load_settings(env={})
    assert settings.model == "gpt-realtime"
    assert settings.voice == "marin"
    assert settings.base_url == "https://api.openai.com/v1"
    assert settings.transcription_model == "gpt-4o-mini-transcribe"
    assert settings.ice_servers == ()
    assert settings.config_path == isolated_env
    assert settings.source_of("model").kind == "default"


def test_layers_flag_over_env_over_file_over_default(isolated_env: Path) -> None:
    write(isolated_env, 'voice = "cedar"\ntoken_ttl = 60\n[turn_detection]\nthreshold = 0.7\n')
    env = {"RTC_VOICE_TOKEN_TTL": "120", "RTC_VOICE_VOICE": "ash"}
    settings = load_settings(env=env, flags={"voice": "verse", "model": None})
    assert (settings.voice, settings.source_of("voice").kind) == ("verse", "flag")
    assert (settings.token_ttl, str(settings.source_of("token_ttl"))) == (
        120,
        "env (RTC_VOICE_TOKEN_TTL)",
    )
    assert settings.vad_threshold == 0.7
    assert settings.source_of("vad_threshold").detail == str(isolated_env)
    assert settings.source_of("model").kind == "default"


def test_openai_base_url_is_honoured_and_ours_wins() -> None:
    assert load_settings(env={"OPENAI_BASE_URL": "http://h:1/v1/"}).base_url == "http://h:1/v1"
    both = {"OPENAI_BASE_URL": "http://a/v1", "RTC_VOICE_BASE_URL": "http://b/v1"}
    assert load_settings(env=both).base_url == "http://b/v1"


def test_config_env_var_and_flag_choose_the_file(tmp_path: Path) -> None:
    a = write(tmp_path / "a.toml", 'model = "gpt-realtime-2"\n')
    b = write(tmp_path / "b.toml", 'model = "gpt-realtime-1.5"\n')
    assert load_settings(env={"RTC_VOICE_CONFIG": str(a)}).model == "gpt-realtime-2"
    assert load_settings(config_flag=b, env={"RTC_VOICE_CONFIG": str(a)}).model == (
        "gpt-realtime-1.5"
    )


def test_named_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml does not exist"):
        load_settings(config_flag=tmp_path / "nope.toml", env={})


def test_bad_toml_names_file_line_and_column(isolated_env: Path) -> None:
    write(isolated_env, 'model = "x"\nvoice = = 3\n')
    with pytest.raises(ConfigError) as info:
        load_settings(env={})
    assert f"{isolated_env}:2:" in info.value.message
    assert "invalid TOML" in info.value.message


def test_the_bad_toml_hint_rewrites_the_file_that_was_named(
    runner: CliRunner, tmp_path: Path, isolated_env: Path
) -> None:
    import shlex

    named = write(tmp_path / "my settings.toml", "voice = = 3\n")
    result = runner.invoke(app, ["config", "show", "--config", str(named)])
    assert result.exit_code == ExitCode.CONFIG
    command = result.stderr.split("start over with `", 1)[1].split("`", 1)[0]
    argv = shlex.split(command)
    assert argv[0] == "rtc-voice"
    assert runner.invoke(app, argv[1:]).exit_code == 0
    assert named.read_text() == example_toml() and not isolated_env.exists()


@pytest.mark.parametrize(
    ("text", "bad", "guess"),
    [
        ("modle = 'x'\n", "modle", "model"),
        (
            "[turn_detection]\ntreshold = 0.2\n",
            "turn_detection.treshold",
            "turn_detection.threshold",
        ),
        ("[turn-detection]\ntype = 'none'\n", "[turn-detection]", "[turn_detection]"),
        ("[audio]\ninput = 'usb'\n", "audio.input", "audio.input_device"),
    ],
)
def test_unknown_key_names_it_and_the_closest(
    isolated_env: Path, text: str, bad: str, guess: str
) -> None:
    write(isolated_env, text)
    with pytest.raises(ConfigError) as info:
        load_settings(env={})
    assert f"'{bad}'" in info.value.message
    assert info.value.hint == f"Did you mean '{guess}'?"


def test_unknown_rtc_voice_environment_variable_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={"RTC_VOICE_VIOCE": "ash"})
    assert "RTC_VOICE_VIOCE" in info.value.message
    assert info.value.hint == "Did you mean 'RTC_VOICE_VOICE'?"


@pytest.mark.parametrize(
    ("text", "env", "fragments"),
    [
        ("token_ttl = 5\n", {}, ["'5'", "token_ttl", "10 to 7200"]),
        (
            "[turn_detection]\ntype = 'auto_vad'\n",
            {},
            ["auto_vad", "server_vad, semantic_vad, none"],
        ),
        ("[network]\nconnect_timeout = -1\n", {}, ["-1", "connect_timeout", "more than 0"]),
        ("", {"RTC_VOICE_TOKEN_TTL": "7201"}, ["7201", "RTC_VOICE_TOKEN_TTL", "10 to 7200"]),
        ("", {"RTC_VOICE_TOKEN_TTL": "ten"}, ["ten", "whole number"]),
        ("voice = 'marine'\n", {}, ["marine", "a built-in voice", "voice_…)."]),
        ("output_modalities = ['audio', 'text']\n", {}, ["not both"]),
        ("[audio]\nnoise_reduction = 'loud'\n", {}, ["loud", "near_field, far_field, off"]),
        ("[network]\nice_servers = ['http://x']\n", {}, ["stun:"]),
        ("base_url = 'api.openai.com'\n", {}, ["api.openai.com", "https://"]),
        ("[transcription]\nlanguage = 'english'\n", {}, ["english", "ISO-639-1"]),
        ("[turn_detection]\nthreshold = true\n", {}, ["True", "0 to 1"]),
        ("[audio]\necho_cancellation = 'yes'\n", {}, ["yes", "auto, on, off"]),
        ("", {"RTC_VOICE_AUDIO_NOISE_SUPPRESSION": "maybe"}, ["maybe", "true or false"]),
    ],
)
def test_bad_values_name_key_value_and_what_is_allowed(
    isolated_env: Path, text: str, env: dict[str, str], fragments: list[str]
) -> None:
    write(isolated_env, text)
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)
    for fragment in fragments:
        assert fragment in info.value.message


def test_a_bad_voice_in_the_file_or_environment_names_the_voices_in_the_hint(
    isolated_env: Path,
) -> None:
    write(isolated_env, "voice = 'marine'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(env={})
    assert info.value.hint is not None
    assert info.value.hint.startswith("Fix 'voice' in ")
    assert "Did you mean marin? Voices: alloy, ash," in info.value.hint
    write(isolated_env, "")
    with pytest.raises(ConfigError) as info:
        load_settings(env={"RTC_VOICE_VOICE": "ceder"})
    assert info.value.hint == "Fix or unset RTC_VOICE_VOICE. " + voice_hint("ceder")
    assert "Did you mean cedar?" in info.value.hint


def test_flag_values_are_validated_and_named() -> None:
    with pytest.raises(
        UsageError, match=r"for the flag --ttl: expected a whole number from 10 to 7200"
    ):
        load_settings(env={}, flags={"token_ttl": 3})


@pytest.mark.parametrize(
    ("args", "env", "file", "code", "fragment"),
    [
        (["token", "--ttl", "5"], {}, "", ExitCode.USAGE, "for the flag --ttl"),
        (["token", "--voice", "nobody"], {}, "", ExitCode.USAGE, "for the flag --voice"),
        (["token", "--base-url", "notaurl"], {}, "", ExitCode.USAGE, "for the flag --base-url"),
        (["serve", "--port", "70000"], {}, "", ExitCode.USAGE, "for the flag --port"),
        (["serve", "--max-duration", "0"], {}, "", ExitCode.USAGE, "for the flag --max-duration"),
        (["serve", "--drops", "0"], {}, "", ExitCode.USAGE, "for the flag --drops"),
        (["serve", "--drop-after", "-1"], {}, "", ExitCode.USAGE, "for the flag --drop-after"),
        (["talk", "--local", "--ui", "fancy"], {}, "", ExitCode.USAGE, "for the flag --ui"),
        (["talk", "--local", "--say", " "], {}, "", ExitCode.USAGE, "for the flag --say"),
        (
            ["talk", "--local", "--base-url", "http://127.0.0.1:9/v1"],
            {},
            "",
            ExitCode.USAGE,
            "--base-url would be ignored",
        ),
        (["talk", "--local", "--token", "ek_abc"], {}, "", ExitCode.USAGE, "--token would be"),
        (
            ["talk", "--local", "--max-duration", "-5"],
            {},
            "",
            ExitCode.USAGE,
            "for the flag --max-duration",
        ),
        (
            ["token"],
            {"RTC_VOICE_TOKEN_TTL": "5"},
            "",
            ExitCode.CONFIG,
            "in the environment variable RTC_VOICE_TOKEN_TTL",
        ),
        (["token"], {}, "token_ttl = 5\n", ExitCode.CONFIG, "'token_ttl' in the config file"),
    ],
)
def test_a_bad_flag_exits_2_and_a_bad_setting_3_each_saying_where(
    runner: CliRunner,
    isolated_env: Path,
    args: list[str],
    env: dict[str, str],
    file: str,
    code: int,
    fragment: str,
) -> None:
    if file:
        write(isolated_env, file)
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == code, result.output
    assert fragment in result.stderr and "Traceback" not in result.output
    assert "\nHint: " in result.stderr  # one sentence and a hint, as every error
    assert "config show" not in result.stderr  # it would fail on the same value


def test_example_file_is_generated_parses_and_matches_defaults() -> None:
    text = example_toml()
    assert (ROOT / "config.example.toml").read_text() == text, "run `make config.example.toml`"
    flat = read_file(ROOT / "config.example.toml")  # the loader a user's file goes through
    assert set(flat) == {f.key for f in FIELDS}
    defaults = Settings()
    for spec in FIELDS:
        assert spec.parse(flat[spec.key]) == getattr(defaults, spec.attr), spec.key
        assert spec.env in text


def test_cli_config_show_reports_sources(
    runner: CliRunner, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(isolated_env, "token_ttl = 99\n")
    monkeypatch.setenv("RTC_VOICE_MODEL", "gpt-realtime-2")
    result = runner.invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    import json

    shown = json.loads(result.stdout)
    assert shown["token_ttl"] == {"value": 99, "source": "file", "origin": str(isolated_env)}
    assert shown["model"] == {
        "value": "gpt-realtime-2",
        "source": "env",
        "origin": "RTC_VOICE_MODEL",
    }
    assert shown["voice"] == {"value": "marin", "source": "default", "origin": None}
    assert shown["output_modalities"]["value"] == ["audio"]
    assert shown["instructions"]["value"] is None
    assert shown["turn_detection.threshold"]["value"] == 0.5
    assert shown["network.ice_servers"]["value"] == []
    flagged = json.loads(
        runner.invoke(app, ["config", "show", "--json", "--config", str(isolated_env)]).stdout
    )
    assert flagged["token_ttl"]["origin"] == str(isolated_env)
    table = runner.invoke(app, ["config", "show"], env={"COLUMNS": "200"})
    assert "env (RTC_VOICE_MODEL)" in table.stdout and "gpt-realtime-2" in table.stdout


def test_cli_config_error_exit_code_and_message(runner: CliRunner, isolated_env: Path) -> None:
    write(isolated_env, "[turn_detection]\ntype = 'sometimes'\n")
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == ExitCode.CONFIG == 3
    assert "Error: Invalid value 'sometimes'" in result.stderr
    assert "Traceback" not in result.output


def test_cli_config_init_and_path(runner: CliRunner, isolated_env: Path) -> None:
    path_result = runner.invoke(app, ["config", "path"])
    assert path_result.stdout.strip() == str(isolated_env)
    assert "does not exist" in path_result.stderr

    assert runner.invoke(app, ["config", "init"]).exit_code == 0
    assert isolated_env.read_text() == example_toml()
    assert load_settings(env={}).source_of("model").kind == "file"

    isolated_env.write_text("# mine\n")
    again = runner.invoke(app, ["config", "init"])
    assert again.exit_code == ExitCode.CONFIG
    assert "already exists" in again.stderr and "--force" in again.stderr
    assert isolated_env.read_text() == "# mine\n"
    assert runner.invoke(app, ["config", "init", "--force"]).exit_code == 0
    assert isolated_env.read_text() == example_toml()


def test_cli_config_path_follows_env(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RTC_VOICE_CONFIG", str(tmp_path / "x.toml"))
    assert runner.invoke(app, ["config", "path"]).stdout.strip() == str(tmp_path / "x.toml")


def test_echo_settings_layer_and_no_aec_turns_cancellation_off(isolated_env: Path) -> None:
    assert (Settings().echo_cancellation, Settings().noise_suppression) == ("auto", False)
    write(isolated_env, "[audio]\necho_cancellation = 'on'\nnoise_suppression = true\n")
    from_file = load_settings(env={})
    assert (from_file.echo_cancellation, from_file.noise_suppression) == ("on", True)
    env = load_settings(env={"RTC_VOICE_AUDIO_NOISE_SUPPRESSION": "0"})
    assert env.noise_suppression is False
    flagged = load_settings(env={}, flags={"echo_cancellation": "off"})
    assert flagged.echo_cancellation == "off"
    assert str(flagged.source_of("echo_cancellation")) == "flag (--no-aec)"


def test_config_show_lists_the_echo_settings(runner: CliRunner) -> None:
    import json

    result = runner.invoke(app, ["config", "show", "--json"])
    shown = json.loads(result.stdout)
    assert shown["audio.echo_cancellation"] == {
        "value": "auto",
        "source": "default",
        "origin": None,
    }
    assert shown["audio.noise_suppression"] == {"value": False, "source": "default", "origin": None}
    table = runner.invoke(app, ["config", "show"], env={"COLUMNS": "200"})
    assert "audio.noise_suppression" in table.stdout and "false" in table.stdout


def _unsearchable_config_home(tmp_path: Path) -> Path:
    """A config directory the user cannot look into: unreadable for a normal user; for root
    (who may read anything) a directory name longer than the system allows (ENAMETOOLONG)."""
    import os

    if os.geteuid() == 0:
        return tmp_path / ("x" * 300)
    locked = tmp_path / "locked"
    (locked / "inner").mkdir(parents=True)
    locked.chmod(0)
    return locked / "inner"


@pytest.mark.parametrize(
    "args", [["config", "show"], ["config", "path"], ["talk", "--local", "--output", "none"]]
)
def test_an_unreadable_config_directory_is_one_sentence(tmp_path: Path, args: list[str]) -> None:
    import os
    import subprocess

    from tests.support import rtc_voice

    home = _unsearchable_config_home(tmp_path)
    try:
        done = subprocess.run(
            rtc_voice(*args),
            env={**os.environ, "XDG_CONFIG_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    finally:
        if home.parent.name == "locked":
            home.parent.chmod(0o700)
    assert done.returncode == ExitCode.CONFIG, done.stderr
    assert "Error: Cannot look for the config file" in done.stderr
    assert "Traceback" not in done.stderr and "--config" in done.stderr


@pytest.mark.timeout(30)
def test_config_show_says_a_missing_file_is_missing(tmp_path: Path) -> None:
    """`config show` titled its table "Settings (file: …/config.toml)" for a file that does not
    exist, as if it had been read: it says there is none and the defaults apply."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "COLUMNS": "200"}
    env = {k: v for k, v in env.items() if not k.startswith("RTC_VOICE_")}
    missing = subprocess.run(
        [sys.executable, "-m", "rtc_voice", "config", "show"],
        capture_output=True,
        text=True,
        env=env,
        timeout=20,
    )
    path = tmp_path / "rtc-voice" / "config.toml"
    assert missing.returncode == 0, missing.stderr
    assert missing.stdout.splitlines()[0] == f"Settings (no file at {path}: defaults)"
    path.parent.mkdir()
    path.write_text('voice = "cedar"\n')
    present = subprocess.run(
        [sys.executable, "-m", "rtc_voice", "config", "show"],
        capture_output=True,
        text=True,
        env=env,
        timeout=20,
    )
    assert present.stdout.splitlines()[0] == f"Settings (file: {path})"
