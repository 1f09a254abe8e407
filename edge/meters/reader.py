"""Read one meter once and report every point: the installer's wiring check."""

from __future__ import annotations

from typing import Any

from edge.meters.link import Link
from protocols.modbus.errors import MeterError
from protocols.modbus.plan import plan_profile
from protocols.modbus.profile import Profile


async def read_meter(link: Link, profile: Profile, unit_id: int) -> dict[str, Any]:
    """Decoded values by point name, plus the errors of reads that failed."""
    values: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    reads = plan_profile(unit_id, profile)
    for request in reads:
        try:
            words = await link.read(request)
        except MeterError as exc:
            errors.append(
                {
                    "error": type(exc).__name__,
                    "message": str(exc),
                    "function": int(request.function),
                    "address": f"{request.address:#06x}",
                    "count": request.count,
                    "points": [p.name for p in request.points],
                }
            )
            continue
        for point, value in request.values(words):
            values[point.name] = {"value": value, "unit": point.unit, "kind": point.kind}
    return {
        "model": profile.model,
        "link": link.name,
        "unit_id": unit_id,
        "requests": len(reads),
        "values": values,
        "errors": errors,
    }
