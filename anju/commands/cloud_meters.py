"""`anju cloud meter swap`: record a unit's meter replaced, as the API's route does."""

from __future__ import annotations

import click


@click.group()
def meter() -> None:
    """Meters: record a swap."""


@meter.command("swap")
@click.argument("old_meter")
@click.argument("new_meter")
@click.option("--at", "swapped_at", required=True, help="When, ISO 8601 with a zone offset.")
@click.option("--old-final", required=True, help="The old meter's last reading.")
@click.option("--new-initial", required=True, help="The new meter's first reading.")
@click.option("--org", "org_name", default=None, help="Organisation (needed if several).")
def meter_swap(
    old_meter: str,
    new_meter: str,
    swapped_at: str,
    old_final: str,
    new_initial: str,
    org_name: str | None,
) -> None:
    """Record that NEW_METER replaced OLD_METER on its unit: billing counts the usage across
    the swap as (old final - old previous) + (new current - new initial)."""
    from pydantic import ValidationError

    from anju.commands.cloud_admin import _org
    from cloud.billing.errors import BillingError
    from cloud.billing.service.swaps import SwapRequest, record_swap
    from cloud.config import load_settings
    from cloud.db import make_engine, make_sessionmaker
    from cloud.meter_bindings import org_meter
    from cloud.security import audit
    from protocols.errors import AnjuError
    from runtime.clock import utc_now

    try:
        request = SwapRequest.model_validate(
            {"new_meter_id": new_meter, "swapped_at": swapped_at,
             "old_final": old_final, "new_initial": new_initial}
        )  # fmt: skip
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise AnjuError(f"swap refused: {problems}") from None
    now = utc_now()
    engine = make_engine(load_settings().effective_database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            org = _org(session, org_name)
            old, new = org_meter(session, org.id, old_meter), org_meter(session, org.id, new_meter)
            if old is None or new is None:
                missing = old_meter if old is None else new_meter
                raise AnjuError(f"no meter {missing!r} in {org.name}")
            try:
                record_swap(session, old, new, request, now=now)
            except BillingError as exc:
                raise AnjuError(f"swap refused: {exc}") from None
            audit.record(
                session, None, "meter.swap", now, username="cli", target_type="meter",
                target_id=old.id, property_id=old.property_id,
                detail={"old_meter_id": old.code, "new_meter_id": new.code,
                        "swapped_at": request.swapped_at.isoformat(),
                        "old_final": str(request.old_final),
                        "new_initial": str(request.new_initial), "via": "cli"},
            )  # fmt: skip
    finally:
        engine.dispose()
    when = request.swapped_at.isoformat(timespec="seconds")
    click.echo(
        f"{new_meter} replaces {old_meter} from {when}: "
        f"old final {request.old_final:f}, new initial {request.new_initial:f}"
    )
