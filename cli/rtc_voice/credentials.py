"""The standard API key: lookup (env, then OS keyring), storage, redaction. Sole keyring user.

The key itself never leaves this module except as the return value of `get_api_key()`, which
the API client puts into one Authorization header. Every error raised here is raised
`from None` so no exception chain can carry it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from rtc_voice.errors import CredentialsError

KEYRING_SERVICE = "rtc-voice"
KEYRING_USERNAME = "openai-api-key"
ENV_KEY = "OPENAI_API_KEY"

_KEY_SHAPE = re.compile(r"^sk-[A-Za-z0-9_\-]{16,}$")

NO_BACKEND_HINT = (
    f"Set {ENV_KEY} in your environment instead, or install a keyring backend "
    "(for example `pip install keyrings.alt`, or run a Secret Service such as gnome-keyring)."
)


@dataclass(frozen=True)
class ApiKey:
    value: str
    origin: Literal["env", "keyring"]

    @property
    def redacted(self) -> str:
        return redact(self.value)

    def __repr__(self) -> str:  # never show the value, not even in a debugger or traceback
        return f"ApiKey(origin={self.origin!r}, value={self.redacted!r})"


def redact(key: str) -> str:
    """`sk-…abcd`: enough to recognise a key, not enough to use it."""
    if len(key) < 12:
        return "…"
    prefix = key[:3] if key.startswith(("sk-", "ek_")) else ""
    return f"{prefix}…{key[-4:]}"


def check_key_shape(key: str) -> str:
    """Strip the key and check it looks like a standard OpenAI key; raise with a hint if not."""
    key = key.strip()
    if not key:
        raise CredentialsError("No key was entered.", hint="Paste the key that starts with sk-.")
    if key.startswith("ek_"):
        raise CredentialsError(
            "That is an ephemeral key (ek_…), which expires within hours and cannot mint others.",
            hint="Store a standard key (sk-…), or pass the ephemeral key to `talk --token`.",
        )
    if not _KEY_SHAPE.match(key):
        raise CredentialsError(
            "That does not look like an OpenAI API key (expected sk- followed by letters, "
            "digits, - or _).",
            hint="Copy the key again from https://platform.openai.com/api-keys.",
        )
    return key


def _keyring_error(action: str, exc: BaseException) -> CredentialsError:
    from keyring.errors import NoKeyringError

    if isinstance(exc, NoKeyringError):
        return CredentialsError(
            f"No usable OS keyring was found to {action}.",
            hint=NO_BACKEND_HINT,
        )
    return CredentialsError(
        f"The OS keyring failed to {action} ({type(exc).__name__}).", hint=NO_BACKEND_HINT
    )


def read_keyring() -> str | None:
    import keyring

    try:
        return keyring.get_password(KEYRING_SERVICE, KEYRING_USERNAME)
    except Exception as exc:  # backends raise anything from dbus errors to RuntimeError
        raise _keyring_error("read the API key", exc) from None


def store_key(key: str) -> None:
    import keyring

    try:
        keyring.set_password(KEYRING_SERVICE, KEYRING_USERNAME, key)
    except Exception as exc:
        raise _keyring_error("store the API key", exc) from None


def delete_key() -> bool:
    """Remove the stored key; False when there was none."""
    import keyring
    from keyring.errors import PasswordDeleteError

    try:
        keyring.delete_password(KEYRING_SERVICE, KEYRING_USERNAME)
    except PasswordDeleteError:
        return False
    except Exception as exc:
        raise _keyring_error("remove the API key", exc) from None
    return True


def find_api_key(env: Mapping[str, str] | None = None) -> ApiKey | None:
    """The key from OPENAI_API_KEY, else the keyring; None if neither has one. A broken keyring
    raises CredentialsError only when no environment key exists."""
    env = os.environ if env is None else env
    from_env = env.get(ENV_KEY, "").strip()
    if from_env:
        return ApiKey(from_env, "env")
    stored = read_keyring()
    return ApiKey(stored, "keyring") if stored else None


def require_api_key(env: Mapping[str, str] | None = None) -> ApiKey:
    try:
        key = find_api_key(env)
    except CredentialsError:
        raise CredentialsError(
            f"No OpenAI API key found: {ENV_KEY} is not set and no usable OS keyring is available.",
            hint=f"Set {ENV_KEY}, install a keyring backend (e.g. `pip install keyrings.alt`), "
            "or try it offline with `rtc-voice talk --local`.",
        ) from None
    if key is None:
        raise CredentialsError(
            "No OpenAI API key found.",
            hint=f"Run `rtc-voice auth login`, set {ENV_KEY}, or try it offline with "
            "`rtc-voice talk --local`.",
        )
    return key
