"""Loaded by every Python child of the test run (PYTHONPATH): the network guard, by file path,
so the child needs nothing else of the tests on its path."""

import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    "_rtc_voice_netguard", os.path.join(os.path.dirname(__file__), "..", "netguard.py")
)
if _spec is not None and _spec.loader is not None and os.environ.get("RTCV_TEST_NETGUARD_LOG"):
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
    _module.install_in_child()
