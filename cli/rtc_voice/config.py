"""Settings: one registry of keys, layered flags > environment > file > defaults, validated.

Every setting is declared once in `FIELDS` (TOML key, attribute, default, parser, help). That list
drives loading, validation messages, `rtc-voice config show` and the generated
`config.example.toml`, so documentation cannot drift from behaviour.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rtc_voice.errors import ConfigError, UsageError
from rtc_voice.protocol import defaults as protocol
from rtc_voice.protocol.defaults import EAGERNESS, VOICES

if TYPE_CHECKING:  # loaded where [tools.NAME] and [mcp.NAME] tables are read
    from rtc_voice.tools import mcp as mcpspec
    from rtc_voice.tools import spec as toolspec

# The environment tools get (tools.env): these variables by default, never the API key, whatever
# the allow-list says. Here, not in tools/spec.py, so reading settings loads no tool machinery.
SECRET_ENV = ("OPENAI_API_KEY",)
DEFAULT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
ENV_PREFIX = "RTC_VOICE_"
CONFIG_ENV = "RTC_VOICE_CONFIG"
# RTC_VOICE_* variables that are not settings (read by the CLI itself)
OTHER_ENV = (CONFIG_ENV, "RTC_VOICE_SERVE_API_KEY", "RTC_VOICE_DEBUG")
APP_NAME = "rtc-voice"

TURN_DETECTION_TYPES = (*protocol.TURN_DETECTION_TYPES, "none")  # none: manual turns (PTT)
NOISE_REDUCTION = (*protocol.NOISE_REDUCTION_TYPES, "off")
ECHO_CANCELLATION = ("auto", "on", "off")

SourceKind = Literal["default", "file", "env", "flag"]


@dataclass(frozen=True)
class Source:
    """Where a setting's value came from."""

    kind: SourceKind
    detail: str = ""  # file path, environment variable or flag name

    def __str__(self) -> str:
        return f"{self.kind} ({self.detail})" if self.detail else self.kind


@dataclass(frozen=True)
class Settings:
    """Effective settings. Field names are the attribute names in `FIELDS`."""

    model: str = protocol.DEFAULT_MODEL
    voice: str = "marin"
    instructions: str | None = None
    base_url: str = DEFAULT_BASE_URL
    token_ttl: int = protocol.KEY_TTL_DEFAULT
    output_modalities: tuple[str, ...] = ("audio",)
    input_device: str | None = None
    output_device: str | None = None
    noise_reduction: str = "far_field"
    echo_cancellation: str = "auto"
    noise_suppression: bool = False
    turn_detection: str = "server_vad"
    vad_threshold: float = protocol.VAD_THRESHOLD
    prefix_padding_ms: int = protocol.VAD_PREFIX_PADDING_MS
    silence_duration_ms: int = protocol.VAD_SILENCE_DURATION_MS
    eagerness: str = "auto"
    transcription_model: str = protocol.TRANSCRIPTION_MODEL
    transcription_language: str | None = None
    connect_timeout: float = 15.0
    ice_servers: tuple[str, ...] = ()
    jitter_buffer_frames: int = -1  # ADAPTIVE_JITTER: "adaptive" (rtc/jitter.py)
    reconnect: bool = True
    rollover_lead_seconds: float = 60.0
    config_path: Path | None = None
    prices: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # tools: the [tools.NAME] tables; the built-in get_time; a command's environment allow-list
    tools: Mapping[str, toolspec.ToolSpec] = field(default_factory=dict)
    get_time: bool = True
    tool_env: tuple[str, ...] = DEFAULT_ENV
    approval_timeout: float = 30.0
    mcp: Mapping[str, mcpspec.McpSpec] = field(default_factory=dict)  # [mcp.NAME] servers
    sources: Mapping[str, Source] = field(default_factory=dict, compare=False)

    @property
    def transcription_enabled(self) -> bool:
        return self.transcription_model != "off"

    def source_of(self, attr: str) -> Source:
        return self.sources.get(attr, Source("default"))


# --- parsers: (raw value from TOML, env or flag) -> typed value; ValueError says what is allowed


def _text(raw: object) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError("a string")
    return str(raw).strip()


def _nonempty(raw: object) -> str:
    value = _text(raw)
    if not value:
        raise ValueError("a non-empty string")
    return value


def _optional_text(raw: object) -> str | None:
    return _text(raw) or None


def _int_range(lo: int, hi: int, unit: str = "") -> Callable[[object], int]:
    def parse(raw: object) -> int:
        try:
            if isinstance(raw, bool) or isinstance(raw, float):
                raise ValueError
            value = int(raw) if isinstance(raw, int | str) else int("x")
        except ValueError:
            raise ValueError(f"a whole number from {lo} to {hi}{unit}") from None
        if not lo <= value <= hi:
            raise ValueError(f"a whole number from {lo} to {hi}{unit}")
        return value

    return parse


def _float_range(
    lo: float, hi: float, unit: str = "", *, open_low: bool = False
) -> Callable[[object], float]:
    lower = f"more than {lo:g}" if open_low else f"from {lo:g}"
    allowed = f"a number {lower} to {hi:g}{unit}"

    def parse(raw: object) -> float:
        try:
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw) if isinstance(raw, int | float | str) else float("x")
        except ValueError:
            raise ValueError(allowed) from None
        if value != value or value > hi or value < lo or (open_low and value == lo):
            raise ValueError(allowed)
        return value

    return parse


def _choice(options: Sequence[str]) -> Callable[[object], str]:
    def parse(raw: object) -> str:
        value = _text(raw).lower()
        if value not in options:
            raise ValueError("one of " + ", ".join(options))
        return value

    return parse


def _bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    value = _text(raw).lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError("true or false")


class Expected(ValueError):
    """A value that cannot be used: what was expected (the message) and a hint naming the
    choices, which the error then gives wherever the value came from."""

    def __init__(self, expected: str, hint: str) -> None:
        super().__init__(expected)
        self.hint = hint


def voice_hint(given: str | None = None) -> str:
    """The voices to pick from, after the closest one to `given` when there is one."""
    import difflib

    close = difflib.get_close_matches((given or "").lower(), VOICES, n=1, cutoff=0.6)
    guess = f"Did you mean {close[0]}? " if given and close else ""
    return (
        f"{guess}Voices: {', '.join(VOICES)} (marin and cedar sound best), or a custom "
        "voice's id (voice_…)."
    )


def _voice(raw: object) -> str:
    value = _text(raw)
    if value in VOICES or value.startswith("voice_"):
        return value
    raise Expected("a built-in voice or a custom voice's id (voice_…)", voice_hint(value))


def _url(raw: object) -> str:
    value = _text(raw).rstrip("/")
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("an http:// or https:// URL such as " + DEFAULT_BASE_URL)
    return value


def _str_list(raw: object) -> tuple[str, ...]:
    if isinstance(raw, str):
        items = [part.strip() for part in raw.split(",")]
    elif isinstance(raw, list | tuple):
        items = [_text(item) for item in raw]
    else:
        raise ValueError("a list of strings")
    return tuple(item for item in items if item)


def _modalities(raw: object) -> tuple[str, ...]:
    items = _str_list(raw)
    if len(items) != 1 or items[0] not in protocol.OUTPUT_MODALITIES:
        raise ValueError('["audio"] (speech with a transcript) or ["text"]; not both')
    return items


def _ice_servers(raw: object) -> tuple[str, ...]:
    items = _str_list(raw)
    for item in items:
        if not re.match(r"^(stun|turn|turns):\S+$", item):
            raise ValueError("a list of stun:, turn: or turns: URLs (empty for none)")
    return items


def _language(raw: object) -> str | None:
    value = _text(raw).lower()
    if value and not re.fullmatch(r"[a-z]{2}", value):
        raise ValueError('a two-letter ISO-639-1 code such as "en", or empty for automatic')
    return value or None


ADAPTIVE_JITTER = -1  # network.jitter_buffer_frames = "adaptive" (rtc/jitter.py)


def _jitter_frames(raw: object) -> int:
    """A number of 20 ms frames, 0 to 8, or "adaptive" (ADAPTIVE_JITTER)."""
    if isinstance(raw, str) and raw.strip().lower() == "adaptive":
        return ADAPTIVE_JITTER
    try:
        return _int_range(0, 8, " frames")(raw)
    except ValueError:
        raise ValueError('"adaptive", or a whole number of frames from 0 to 8') from None


def _device(raw: object) -> str | None:
    return _optional_text(raw)


def _env_names(raw: object) -> tuple[str, ...]:
    items = _str_list(raw)
    for item in items:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", item):
            raise ValueError('a list of environment variable names such as ["PATH", "HOME"]')
        if item in SECRET_ENV:
            raise ValueError(f"names other than {item}: tools never get the API key")
    return items


@dataclass(frozen=True)
class Field:
    key: str  # dotted TOML key
    attr: str  # Settings attribute
    parse: Callable[[object], Any]
    help: str
    example: str  # TOML literal written to config.example.toml
    flag: str | None = None  # the CLI flag that overrides it, when there is one

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.upper().replace(".", "_")


FIELDS: tuple[Field, ...] = (
    Field("model", "model", _nonempty, "Realtime model.", f'"{protocol.DEFAULT_MODEL}"', "--model"),
    Field(
        "voice",
        "voice",
        _voice,
        "Assistant voice: " + ", ".join(VOICES) + " (marin and cedar sound best).",
        '"marin"',
        "--voice",
    ),
    Field(
        "instructions",
        "instructions",
        _optional_text,
        "System instructions for the model; empty uses the model's default.",
        '""',
        "--instructions",
    ),
    Field(
        "base_url",
        "base_url",
        _url,
        "API base URL (OPENAI_BASE_URL is honoured too).",
        f'"{DEFAULT_BASE_URL}"',
        "--base-url",
    ),
    Field(
        "token_ttl",
        "token_ttl",
        _int_range(protocol.KEY_TTL_MIN, protocol.KEY_TTL_MAX, " seconds"),
        f"Lifetime of minted ephemeral keys in seconds ({protocol.KEY_TTL_MIN} to "
        f"{protocol.KEY_TTL_MAX}).",
        str(protocol.KEY_TTL_DEFAULT),
        "--ttl",
    ),
    Field(
        "output_modalities",
        "output_modalities",
        _modalities,
        'What the model answers with: ["audio"] (speech + transcript) or ["text"].',
        '["audio"]',
    ),
    Field(
        "audio.input_device",
        "input_device",
        _device,
        "Microphone: index or part of its name (see `rtc-voice devices`); empty = default.",
        '""',
        "--input",
    ),
    Field(
        "audio.output_device",
        "output_device",
        _device,
        "Speaker: index or part of its name; empty = system default.",
        '""',
        "--output",
    ),
    Field(
        "audio.noise_reduction",
        "noise_reduction",
        _choice(NOISE_REDUCTION),
        "Server-side input noise reduction: near_field (headset), far_field (laptop or room "
        "microphone; helps against echo), off.",
        '"far_field"',
    ),
    Field(
        "audio.echo_cancellation",
        "echo_cancellation",
        _choice(ECHO_CANCELLATION),
        "Cancel the speaker's sound in the microphone (WebRTC AEC3), so the assistant does not "
        "interrupt itself on laptop speakers: auto (on when both ends are devices), on, or off "
        "(for headphones; the --no-aec flag).",
        '"auto"',
        "--no-aec",
    ),
    Field(
        "audio.noise_suppression",
        "noise_suppression",
        _bool,
        "With echo cancellation: also suppress steady background noise (fans, hum) before sending.",
        "false",
    ),
    Field(
        "turn_detection.type",
        "turn_detection",
        _choice(TURN_DETECTION_TYPES),
        "server_vad (silence ends a turn), semantic_vad (the model judges), or none "
        "(push-to-talk).",
        '"server_vad"',
    ),
    Field(
        "turn_detection.threshold",
        "vad_threshold",
        _float_range(0.0, 1.0),
        "server_vad: activation threshold, 0 to 1; higher needs louder speech.",
        str(protocol.VAD_THRESHOLD),
    ),
    Field(
        "turn_detection.prefix_padding_ms",
        "prefix_padding_ms",
        _int_range(0, 5000, " ms"),
        "server_vad: audio kept before speech starts, in ms.",
        str(protocol.VAD_PREFIX_PADDING_MS),
    ),
    Field(
        "turn_detection.silence_duration_ms",
        "silence_duration_ms",
        _int_range(0, 10000, " ms"),
        "server_vad: silence that ends a turn, in ms.",
        str(protocol.VAD_SILENCE_DURATION_MS),
    ),
    Field(
        "turn_detection.eagerness",
        "eagerness",
        _choice(EAGERNESS),
        "semantic_vad: low, medium, high or auto (= medium).",
        '"auto"',
    ),
    Field(
        "transcription.model",
        "transcription_model",
        _nonempty,
        'Transcribes your side of the call; "off" disables it.',
        f'"{protocol.TRANSCRIPTION_MODEL}"',
    ),
    Field(
        "transcription.language",
        "transcription_language",
        _language,
        'Spoken language as ISO-639-1 ("en"); empty detects it.',
        '""',
    ),
    Field(
        "network.connect_timeout",
        "connect_timeout",
        _float_range(0.0, 300.0, " seconds", open_low=True),
        "Seconds to wait for a call to connect (HTTP, ICE, DTLS, data channel).",
        "15.0",
    ),
    Field(
        "network.jitter_buffer_frames",
        "jitter_buffer_frames",
        _jitter_frames,
        '"adaptive" (default): hands each in-order packet on at once (~20 ms), holds back '
        "only as far as packets overtake each other (late packets are ridden out by the "
        "speaker buffer), and gives up on a lost packet quickly (the gap is faded over). "
        "Or a fixed number of 20 ms frames: 0 hands each in-order packet "
        "on at once and waits long for a lost one; aiortc's own default of 4 adds ~80 ms.",
        '"adaptive"',
    ),
    Field(
        "network.reconnect",
        "reconnect",
        _bool,
        "When the network drops mid-call, open a new call within seconds and replay the "
        "conversation into it (false: end the call). --no-reconnect turns it off once.",
        "true",
        "--no-reconnect",
    ),
    Field(
        "network.rollover_lead_seconds",
        "rollover_lead_seconds",
        _float_range(5.0, 600.0, " seconds"),
        "Seconds before a session's maximum duration (60 minutes) to move the conversation to "
        "a new session at a quiet moment.",
        "60.0",
    ),
    Field(
        "network.ice_servers",
        "ice_servers",
        _ice_servers,
        "STUN/TURN URLs. Empty (the default) contacts no third party; add "
        '"stun:stun.l.google.com:19302" if you are behind a strict NAT.',
        "[]",
    ),
    # [tools.NAME] tables (your own tools) are read by tools/spec.py; these are the shared keys.
    Field(
        "tools.get_time",
        "get_time",
        _bool,
        "Offer the built-in get_time tool (the user's local date and time).",
        "true",
    ),
    Field(
        "tools.env",
        "tool_env",
        _env_names,
        "Environment variables a command tool receives (the allow-list; nothing else is passed, "
        "and never OPENAI_API_KEY).",
        "[" + ", ".join(f'"{name}"' for name in DEFAULT_ENV) + "]",
    ),
    Field(
        "tools.approval_timeout",
        "approval_timeout",
        _float_range(0.0, 3600.0, " seconds", open_low=True),
        'Seconds to wait for y/n on a tool with approval = "ask"; no answer declines the call.',
        "30.0",
    ),
)

FIELDS_BY_KEY = {f.key: f for f in FIELDS}
FIELDS_BY_ATTR = {f.attr: f for f in FIELDS}
_SECTIONS = sorted({f.key.split(".")[0] for f in FIELDS if "." in f.key})


def default_config_path() -> Path:
    from platformdirs import user_config_path

    return user_config_path(APP_NAME, appauthor=False) / "config.toml"


def resolve_config_path(flag: Path | None, env: Mapping[str, str]) -> tuple[Path, bool]:
    """The config file to read, and whether the user named it explicitly (then it must exist)."""
    if flag is not None:
        return flag, True
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]), True
    return default_config_path(), False


def config_exists(path: Path) -> bool:
    """Whether the config file exists; a directory on the way that cannot be searched (permission
    denied, a name too long) is a ConfigError naming it rather than a traceback."""
    try:
        return path.exists()
    except OSError as exc:
        raise ConfigError(
            f"Cannot look for the config file {path}: {exc.strerror or exc}.",
            hint=f"Check the permissions of {path.parent}, or name another file with --config "
            f"or {CONFIG_ENV}.",
        ) from None


def _closest(name: str, candidates: Sequence[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    if matches:
        return matches[0]
    leaf = name.rsplit(".", 1)[-1]
    for candidate in candidates:
        if candidate.rsplit(".", 1)[-1] == leaf:
            return candidate
    return None


def _unknown(name: str, where: str, candidates: Sequence[str]) -> ConfigError:
    guess = _closest(name, candidates)
    hint = f"Did you mean '{guess}'?" if guess else "Run `rtc-voice config init` for a template."
    return ConfigError(f"Unknown setting '{name}' in {where}.", hint=hint)


PRICE_KEYS = (
    "text_in",
    "text_cached",
    "text_out",
    "audio_in",
    "audio_cached",
    "audio_out",
    "image_in",
    "image_cached",
)


def _prices(table: object, where: str) -> dict[str, dict[str, float]]:
    """`[prices."MODEL"]` tables: USD per 1M tokens under the keys in PRICE_KEYS."""
    if not isinstance(table, dict):
        raise ConfigError(f"'prices' in {where} must be a table of models.")
    out: dict[str, dict[str, float]] = {}
    for model, row in table.items():
        if not isinstance(row, dict):
            raise ConfigError(
                f"'prices.{model}' in {where} must be a table.",
                hint='Write [prices."MODEL"] with keys such as audio_in = 32.0.',
            )
        for key, value in row.items():
            if key not in PRICE_KEYS:
                raise _unknown(
                    f"prices.{model}.{key}", where, [f"prices.{model}.{k}" for k in PRICE_KEYS]
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(
                    f"Invalid value {value!r} for 'prices.{model}.{key}' in {where}: expected "
                    "USD per 1M tokens, a number of 0 or more."
                )
        out[str(model)] = {k: float(v) for k, v in row.items()}
    return out


def load_prices(settings: Settings) -> dict[str, dict[str, float]]:
    """Packaged prices per model, with the config file's [prices."MODEL"] laid over them."""
    import tomllib
    from importlib.resources import files

    packaged = tomllib.loads(files("rtc_voice").joinpath("data/prices.toml").read_text())
    prices = _prices(packaged.get("prices", {}), "the packaged price list")
    for model, row in settings.prices.items():
        prices[model] = {**prices.get(model, {}), **row}
    return prices


def _flatten(table: Mapping[str, Any], path: Path) -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in table.items():
        if key == "prices":
            flat[key] = _prices(value, str(path))
        elif isinstance(value, dict):
            if key not in _SECTIONS:
                raise _unknown(f"[{key}]", str(path), [f"[{s}]" for s in _SECTIONS])
            for sub, sub_value in value.items():
                flat[f"{key}.{sub}"] = sub_value
        else:
            flat[key] = value
    return flat


def read_file(path: Path) -> dict[str, object]:
    """The file's settings as dotted keys; raises ConfigError with line and column on bad TOML.

    The TOML parser (and the other modules only some commands need: difflib, shlex, textwrap)
    loads where it is used: with no config file, `devices` reads none."""
    import tomllib

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"Config file {path} does not exist.",
            hint="Create one with `rtc-voice config init`, or drop --config / RTC_VOICE_CONFIG.",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc}.") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        reason = re.sub(r"\s*\(at line.*\)$", "", str(exc)) or "syntax error"
        where = f"{path}:{match.group(1)}:{match.group(2)}" if match else str(path)
        import shlex

        raise ConfigError(
            f"{where}: invalid TOML: {reason}.",
            hint="Fix the file at that line and column, or start over with "
            f"`rtc-voice config init --force --config {shlex.quote(str(path))}`.",
        ) from None
    tools = _declared_tools(table, path, text)
    servers = table.pop("mcp", None)
    if servers is not None and not isinstance(servers, dict):
        raise ConfigError(f"'mcp' in {path} must be tables: [mcp.NAME] with url = ….")
    flat = _flatten(table, path)
    for key in flat:
        if key not in FIELDS_BY_KEY and key != "prices":
            raise _unknown(key, str(path), list(FIELDS_BY_KEY))
    if tools:
        flat["tools"] = tools
    if servers:
        from rtc_voice.tools import mcp as mcpspec

        flat["mcp"] = {
            label: mcpspec.parse_mcp(label, value, path, text) for label, value in servers.items()
        }
    return flat


def _declared_tools(table: dict[str, Any], path: Path, text: str) -> dict[str, toolspec.ToolSpec]:
    """Take the `[tools.NAME]` tables out of `table` (in place) and validate them; the scalar
    keys of `[tools]` stay for the ordinary settings."""
    section = table.get("tools")
    if not isinstance(section, dict):
        return {}
    tables = {name: value for name, value in section.items() if isinstance(value, dict)}
    for name in tables:
        del section[name]
    from rtc_voice.tools import spec as toolspec

    return {name: toolspec.parse_tool(name, value, path, text) for name, value in tables.items()}


def _parse(spec: Field, raw: object, source: Source) -> Any:
    """Parse one value; a bad flag is a UsageError (exit 2), a bad file or environment value a
    ConfigError (exit 3), each saying where the value came from and how to fix it there."""
    try:
        return spec.parse(raw)
    except ValueError as exc:
        shown = raw if isinstance(raw, str) else repr(raw)
        choices = f" {exc.hint}" if isinstance(exc, Expected) else ""
        if source.kind == "flag":
            error = UsageError.bad_value(source.detail, repr(shown), str(exc))
            if isinstance(raw, str) and raw.startswith("--"):  # `--voice --local`: no value
                error.message = f"The flag {source.detail} needs a value, but {raw} follows it."
            if choices:
                error.hint = choices.strip()
            raise error from None
        if source.kind == "env":
            raise ConfigError(
                f"Invalid value {shown!r} in the environment variable {source.detail}: "
                f"expected {exc}.",
                hint=f"Fix or unset {source.detail}.{choices}",
            ) from None
        raise ConfigError(
            f"Invalid value {shown!r} for '{spec.key}' in the config file {source.detail}: "
            f"expected {exc}.",
            hint=f"Fix '{spec.key}' in {source.detail}.{choices}",
        ) from None


def load_settings(
    *,
    config_flag: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, object] | None = None,
) -> Settings:
    """Build the effective settings. `flags` maps attribute names to values given on the command
    line (None means not given)."""
    env = os.environ if env is None else env
    path, explicit = resolve_config_path(config_flag, env)
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}

    file_values: dict[str, object] = {}
    if explicit or config_exists(path):
        file_values = read_file(path)
    prices = file_values.pop("prices", {})
    if prices:
        values["prices"] = prices
    tools = file_values.pop("tools", {})
    if tools:
        values["tools"] = tools
        sources["tools"] = Source("file", str(path))
    servers = file_values.pop("mcp", {})
    if servers:
        values["mcp"] = servers
    for key, raw in file_values.items():
        spec = FIELDS_BY_KEY[key]
        sources[spec.attr] = Source("file", str(path))
        values[spec.attr] = _parse(spec, raw, sources[spec.attr])

    known_env = {spec.env for spec in FIELDS} | set(OTHER_ENV)
    for name in env:
        if name.startswith(ENV_PREFIX) and name not in known_env:
            raise _unknown(name, "the environment", sorted(known_env))
    for spec in FIELDS:
        names = [spec.env] + (["OPENAI_BASE_URL"] if spec.attr == "base_url" else [])
        for name in names:
            if env.get(name, "") != "":
                sources[spec.attr] = Source("env", name)
                values[spec.attr] = _parse(spec, env[name], sources[spec.attr])
                break

    for attr, raw in (flags or {}).items():
        if raw is None:
            continue
        spec = FIELDS_BY_ATTR[attr]
        sources[attr] = Source("flag", spec.flag or attr)
        values[attr] = _parse(spec, raw, sources[attr])

    return replace(Settings(), **values, config_path=path, sources=sources)


def display_value(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return str(value)


def _typed(spec: Field, settings: Settings) -> Any:
    value = getattr(settings, spec.attr)
    if spec.attr == "jitter_buffer_frames" and value == ADAPTIVE_JITTER:
        return "adaptive"
    return value


def effective_rows(settings: Settings) -> list[tuple[str, str, Source]]:
    """(key, shown value, source) for every setting, in declaration order."""
    rows = [
        (spec.key, display_value(_typed(spec, settings)), settings.source_of(spec.attr))
        for spec in FIELDS
    ]
    rows += [
        (f"tools.{name}", tool.summary(), Source("file", tool.where))
        for name, tool in settings.tools.items()
    ]
    rows += [
        (f"mcp.{label}", server.summary(), Source("file", server.where))
        for label, server in settings.mcp.items()
    ]
    return rows


def effective_json(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every setting for `config show --json`: the typed value (numbers, lists, null), where it
    came from (`source`: default, file, env or flag) and which file, variable or flag (`origin`,
    null for defaults)."""
    out: dict[str, dict[str, Any]] = {}
    for spec in FIELDS:
        value = _typed(spec, settings)
        src = settings.source_of(spec.attr)
        out[spec.key] = {
            "value": list(value) if isinstance(value, tuple) else value,
            "source": src.kind,
            "origin": src.detail or None,
        }
    for name, tool in settings.tools.items():
        out[f"tools.{name}"] = {"value": tool.as_json(), "source": "file", "origin": tool.where}
    for label, server in settings.mcp.items():
        out[f"mcp.{label}"] = {"value": server.as_json(), "source": "file", "origin": server.where}
    return out


def example_toml() -> str:
    """The documented example configuration, generated from `FIELDS`."""
    import textwrap

    from rtc_voice.tools import mcp as mcpspec
    from rtc_voice.tools import spec as toolspec

    lines = [
        "# rtc-voice configuration. Copy to the path `rtc-voice config path` prints, or run",
        "# `rtc-voice config init`. Precedence: command-line flags > environment > this file >",
        "# defaults. Every key can also be set as an environment variable, named in its comment.",
        "# The API key is never stored here: use `rtc-voice auth login` or OPENAI_API_KEY.",
        "",
    ]
    section = ""
    for spec in FIELDS:
        head, _, leaf = spec.key.rpartition(".")
        if head != section:
            section = head
            lines += [f"[{head}]", ""]
        lines += ["# " + line for line in textwrap.wrap(spec.help, 96)]
        lines.append(f"# env: {spec.env}" + (f"; flag: {spec.flag}" if spec.flag else ""))
        lines += [f"{leaf or spec.key} = {spec.example}", ""]
    lines += [
        "# Prices for the cost meter, USD per 1M tokens. Built in for the gpt-realtime family;",
        "# add or override a model like this (keys: " + ", ".join(PRICE_KEYS) + "):",
        '# [prices."gpt-realtime"]',
        "# audio_in = 32.0",
        "# audio_out = 64.0",
        "",
        "# Your own tools, one [tools.NAME] table each (keys: "
        + ", ".join(toolspec.TOOL_KEYS)
        + ").",
        "# command: argv run without a shell; the arguments arrive as JSON on stdin, stdout is the",
        "# result (a relative program path is relative to this file). http: the arguments are",
        "# POSTed as JSON, the response body is the result. approval: ask (y/n on screen before",
        "# each call; declined without a terminal unless `talk --yes`) or never. Choose per call",
        "# with `talk --tool NAME` (repeatable) or `--no-tools`.",
        "# [tools.weather]",
        '# description = "Current weather for a city"',
        '# parameters = { type = "object", properties = { city = { type = "string" } }, '
        'required = ["city"] }',
        '# command = ["./bin/weather", "--json"]',
        "# timeout = 10",
        '# approval = "ask"',
        "#",
        "# [tools.tickets]",
        '# description = "Open support tickets for a customer"',
        '# parameters = { type = "object", properties = { customer = { type = "string" } } }',
        '# http = "http://127.0.0.1:9000/tickets"',
        '# approval = "never"',
        "",
        "# MCP servers OpenAI's side calls for the model, one [mcp.NAME] table each",
        "# (keys: " + ", ".join(mcpspec.MCP_KEYS) + ").",
        '# Header values: "literal", { env = "VAR" } or { keyring = "ENTRY" }, each with an',
        '# optional prefix such as "Bearer ". require_approval: always (y/n on screen, like',
        "# tools) or never.",
        "# [mcp.github]",
        '# url = "https://api.githubcopilot.com/mcp/"',
        '# headers = { Authorization = { env = "GITHUB_TOKEN", prefix = "Bearer " } }',
        '# allowed_tools = ["search_issues", "get_issue"]',
        '# require_approval = "always"',
    ]
    return "\n".join(lines).rstrip() + "\n"
