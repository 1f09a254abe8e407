"""The Anju cloud controller: portfolio, leases, billing, access and gateway fleet."""

from runtime.wait_for import install as _install_wait_for

_install_wait_for()  # before any library waits: see runtime.wait_for
