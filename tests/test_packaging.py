"""What a user or packager gets: the sdist can run its own tests; the Makefile's targets."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_sdist_has_what_its_tests_need_and_its_licence(tmp_path: Path) -> None:
    """Built from a clean copy of the checkout (no stale egg-info), with setuptools in this
    environment (no network), as `python -m build --sdist` would."""
    import shutil

    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.splitlines()
    source = tmp_path / "checkout"
    for rel in listed:
        if (ROOT / rel).is_file():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, source / rel)
    code = "import sys\nfrom setuptools import build_meta as b\nprint(b.build_sdist(sys.argv[1]))"
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    name = done.stdout.strip().splitlines()[-1]
    with tarfile.open(tmp_path / name) as sdist:
        top = name.removesuffix(".tar.gz")
        files = {m.name.removeprefix(top + "/") for m in sdist.getmembers()}
        pkg_info = sdist.extractfile(f"{top}/PKG-INFO")
        assert pkg_info is not None
        meta = Parser().parsestr(pkg_info.read().decode())
    needed = {
        "LICENSE",
        "config.example.toml",
        "tests/__init__.py",
        "tests/conftest.py",
        "tests/support.py",
        "tests/rtc_client.py",
        "tests/pulse.py",
        "tests/netguard.py",
        "tests/netguard_site/sitecustomize.py",
        "cli/rtc_voice/data/hello.wav",
    }
    assert needed <= files, sorted(needed - files)
    assert not any("__pycache__" in f for f in files)
    assert meta["License-Expression"] == "MIT"
    classifiers = meta.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert "License-File" in meta and meta["License-File"] == "LICENSE"


def make(*args: str) -> str:
    done = subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_demo_installs_only_the_runtime() -> None:
    planned = make("-n", "-B", "demo")
    installs = [line for line in planned.splitlines() if "pip install" in line and " -e " in line]
    assert installs and all("[dev]" not in line for line in installs), installs
    assert "[dev]" in make("-n", "-B", "test")


def test_make_help_lists_every_target() -> None:
    shown = make("help")
    for target in ("demo", "test", "check", "bench", "lowest", "install", "clean"):
        assert f"make {target} " in shown
