"""The environment benchmarks start rtc-voice (and its stock baselines) in: as installed.

pip and pipx byte-compile a package when they install it, and a development checkout writes
its `__pycache__` on the first run, so no user pays for compiling rtc-voice's sources at every
start. A machine with PYTHONDONTWRITEBYTECODE set (this project's CI and agent machines) would
make every benchmarked start compile the whole `rtc_voice` package again (about 150 ms for the
`talk` path on a 2-core machine). `installed_env` gives the children a private bytecode cache
instead (PYTHONPYCACHEPREFIX, a temporary folder): the benchmark's warm-up run fills it, for
rtc-voice and the stock clients alike, and nothing is written into the source tree.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Mapping


def installed_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    cache = tempfile.mkdtemp(prefix="bench-pycache-")
    atexit.register(shutil.rmtree, cache, ignore_errors=True)
    result = dict(os.environ if env is None else env)
    result.pop("PYTHONDONTWRITEBYTECODE", None)
    result["PYTHONPYCACHEPREFIX"] = cache
    return result
