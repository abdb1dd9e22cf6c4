"""Errors a user can act on, and the exit codes they map to (the CLI's contract).

    RtcVoiceError                 message + hint + exit code
     ├── ConfigError              bad settings file, key or value          (3)
     ├── CredentialsError         no key, unusable keyring, bad key        (4)
     │    └── KeyringLockedError  the keyring exists but is locked          (4)
     ├── ApiError                 an HTTP answer from the API
     │    ├── AuthenticationError 401                                      (4)
     │    ├── BadRequestError     400 and other 4xx                        (5)
     │    ├── RateLimitError      429 after the bounded retries            (6)
     │    └── ServerError         5xx after the bounded retries            (7)
     ├── NetworkError             refused, DNS, timeout: names the host    (8)
     ├── ProtocolError            an answer we cannot understand           (9)
     ├── AudioError               devices, PortAudio, WAV files            (10)
     │    └── FileError           a --transcript/--record/--output file     (10)
     ├── CallError                the WebRTC call failed or stalled        (11)
     └── UsageError               a flag value that cannot be used         (2)

Only `rtc_voice.app` and the entry point's quick listing (`rtc_voice.entry`) turn these into
exit codes, both through `rtc_voice.ui.console.report`, which prints them.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; documented in README.md."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    CONFIG = 3
    AUTH = 4
    BAD_REQUEST = 5
    RATE_LIMITED = 6
    SERVER = 7
    NETWORK = 8
    PROTOCOL = 9
    AUDIO = 10
    CALL = 11
    INTERRUPTED = 130
    TERMINATED = 143


class RtcVoiceError(Exception):
    """An error with a one-sentence message, an optional hint and an exit code."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ConfigError(RtcVoiceError):
    exit_code = ExitCode.CONFIG


class CredentialsError(RtcVoiceError):
    exit_code = ExitCode.AUTH


class KeyringLockedError(CredentialsError):
    """The OS keyring is there but locked: unlocking it, not installing one, is the fix."""


class ApiError(RtcVoiceError):
    """The API answered with an error status; carries OpenAI's own fields."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        param: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code
        self.param = param


class AuthenticationError(ApiError):
    exit_code = ExitCode.AUTH


class BadRequestError(ApiError):
    exit_code = ExitCode.BAD_REQUEST


class RateLimitError(ApiError):
    exit_code = ExitCode.RATE_LIMITED


class ServerError(ApiError):
    exit_code = ExitCode.SERVER


class NetworkError(RtcVoiceError):
    exit_code = ExitCode.NETWORK


class ProtocolError(RtcVoiceError):
    exit_code = ExitCode.PROTOCOL


class AudioError(RtcVoiceError):
    exit_code = ExitCode.AUDIO


class FileError(AudioError):
    """A file the call reads or writes (audio, recording, transcript) cannot be used."""


class CallError(RtcVoiceError):
    exit_code = ExitCode.CALL


class UsageError(RtcVoiceError):
    """A flag's value cannot be used (the command line itself parsed)."""

    exit_code = ExitCode.USAGE

    @classmethod
    def bad_value(cls, flag: str, shown: str, expected: str) -> UsageError:
        """The one wording of a flag value that cannot be used, whichever code checks it."""
        return cls(
            f"Invalid value {shown} for the flag {flag}: expected {expected}.",
            hint=f"Give {flag} another value (see --help).",
        )
