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

from rtc_voice.errors import CredentialsError, KeyringLockedError

KEYRING_SERVICE = "rtc-voice"
KEYRING_USERNAME = "openai-api-key"
ENV_KEY = "OPENAI_API_KEY"

_KEY_SHAPE = re.compile(r"^sk-[A-Za-z0-9_\-]{16,}$")

LOCKED_HINT = (
    "Unlock it (log in to your desktop session, or unlock the 'login' keyring in your keyring "
    f"manager), or set {ENV_KEY} instead."
)


def backend_install_hint(prefix: str | None = None) -> str:
    """How to add a keyring backend to the environment rtc-voice really runs in: a pipx or uv
    tool lives in its own virtualenv, where a plain `pip install` does not reach."""
    import sys

    where = (prefix or sys.prefix).replace("\\", "/")
    if "/pipx/venvs/" in where:
        install = "`pipx inject rtc-voice keyrings.alt`"
    elif "/uv/tools/" in where:
        install = "`uv tool install --with keyrings.alt rtc-voice`"
    else:
        install = f"`{sys.executable} -m pip install keyrings.alt`"
    return (
        f"Set {ENV_KEY} in your environment instead, or run a Secret Service such as "
        f"gnome-keyring, or add a file-based backend with {install}."
    )


def describe_backend() -> tuple[str, bool]:
    """Where `store_key` puts the key, in words, and whether that place is unencrypted."""
    import keyring

    backend = keyring.get_keyring()
    kind = type(backend)
    name = getattr(kind, "name", None) or f"{kind.__module__}.{kind.__name__}"
    if kind.__module__.startswith("keyrings.alt") and "Plaintext" in kind.__name__:
        path = getattr(backend, "file_path", "a file")
        return f"the plain-text file {path} (base64, not encrypted; {name})", True
    if kind.__module__.startswith("keyrings.alt"):
        path = getattr(backend, "file_path", None)
        return (f"the file {path} ({name})" if path else name), False
    return f"the OS keyring ({name})", False


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
    from keyring.errors import KeyringLocked, NoKeyringError

    if isinstance(exc, KeyringLocked):
        return KeyringLockedError(
            f"The OS keyring is locked, so rtc-voice cannot {action}.", hint=LOCKED_HINT
        )
    if isinstance(exc, NoKeyringError):
        return CredentialsError(
            f"No usable OS keyring was found to {action}.",
            hint=backend_install_hint(),
        )
    return CredentialsError(
        f"The OS keyring failed to {action} ({type(exc).__name__}).",
        hint=backend_install_hint(),
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
    except KeyringLockedError:
        raise KeyringLockedError(
            f"No OpenAI API key found: {ENV_KEY} is not set and the OS keyring is locked.",
            hint=LOCKED_HINT,
        ) from None
    except CredentialsError:
        raise CredentialsError(
            f"No OpenAI API key found: {ENV_KEY} is not set and no usable OS keyring is available.",
            hint=backend_install_hint() + " Or try it offline with `rtc-voice talk --local`.",
        ) from None
    if key is None:
        raise CredentialsError(
            "No OpenAI API key found.",
            hint=f"Run `rtc-voice auth login`, set {ENV_KEY}, or try it offline with "
            "`rtc-voice talk --local`.",
        )
    return key
