"""Anju launcher: the `anju` command, the demo and the simulators.

This package wires `edge` and `cloud` together from outside; neither of them imports it.
"""

from importlib.metadata import PackageNotFoundError, version

from runtime.wait_for import install as _install_wait_for

try:
    __version__ = version("anju")
except PackageNotFoundError:  # pragma: no cover - running from a tree without install
    __version__ = "0.0.0+unknown"

_install_wait_for()  # before any library waits: see runtime.wait_for
