"""Console pages, one module per group; `register` imports them (their `@ui.page`s register on
NiceGUI's app when imported, so only a mounted console pays for them)."""

from __future__ import annotations


def register() -> None:
    from cloud.console.pages import (  # noqa: F401, PLC0415
        audit,
        billing,
        billing_review,
        board,
        doors,
        gateways,
        imports,
        leases,
        login,
        meters,
        parts,
        users,
        work_orders,
    )
