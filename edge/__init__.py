"""The Anju gateway: polls meters, drives doors, and keeps working when the internet is gone."""

from runtime.wait_for import install as _install_wait_for

_install_wait_for()  # before any library waits: see runtime.wait_for
