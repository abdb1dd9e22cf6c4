"""Checks on the files a call will write, made before the call starts (so a bad path fails
first and loses nothing)."""

from __future__ import annotations

import os
from pathlib import Path

from rtc_voice.errors import FileError

# Extensions taken as audio files (not device names) in --input and --output.
AUDIO_EXTENSIONS = frozenset(
    ".wav .wave .flac .mp3 .ogg .oga .opus .m4a .aac .aif .aiff .au .caf .webm .mka .wma".split()
)


def is_file_spec(spec: str | None) -> bool:
    """An --input/--output value naming a file: an audio extension, or an existing file (here,
    not in audio/wavfile.py, so telling a device from a file loads no numpy)."""
    if not spec:
        return False
    path = Path(spec).expanduser()
    return path.suffix.lower() in AUDIO_EXTENSIONS or path.is_file() or path.is_dir()


def check_writable(path: Path, what: str = "file", hint: str | None = None) -> None:
    """Fail now, before any call, if `path` could not be created later."""
    problem = None
    if path.is_dir():
        problem = "it is a directory"
    elif path.exists():
        if not os.access(path, os.W_OK):
            problem = "permission denied"
    elif not path.parent.is_dir():
        problem = f"the folder {path.parent} does not exist"
    elif not os.access(path.parent, os.W_OK | os.X_OK):
        problem = f"the folder {path.parent} is not writable"
    if problem:
        raise FileError(f"Cannot write the {what} {path}: {problem}.", hint=hint)
