"""Read one meter once and report every point: the installer's wiring check."""

from __future__ import annotations

from typing import Any

from edge.meters.transport import Transport
from protocols.modbus.errors import MeterError
from protocols.modbus.plan import plan_profile, refused_span, split_read
from protocols.modbus.profile import Profile


async def read_meter(transport: Transport, profile: Profile, unit_id: int) -> dict[str, Any]:
    """Decoded values by point name, plus the errors of reads that failed."""
    values: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    reads = list(plan_profile(unit_id, profile))
    sent = 0
    while reads:
        request = reads.pop(0)
        sent += 1
        try:
            words = await transport.read(request)
        except MeterError as exc:
            if refused_span(exc, request):  # the meter will not serve the span whole
                reads[:0] = split_read(request)
                continue
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
        "link": transport.name,
        "unit_id": unit_id,
        "requests": sent,
        "values": values,
        "errors": errors,
    }
