"""Which gateway serves a meter: the one source of that meter's readings.

A gateway puts whatever meter id it likes in a reading, so an id alone proves nothing. The cloud
binds each meter to one gateway of the meter's property; a reading is that meter's only when the
bound gateway sent it (`reading_of`). Ingest quarantines readings whose id names a meter bound to
another gateway (`foreign_pairs`). Meter codes are unique in an organisation only, so a code is
looked up in the caller's organisation (`org_meter`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import ColumnElement, and_, false, select
from sqlalchemy.orm import Session

from cloud.models import Gateway, Meter, Property, Reading
from protocols.errors import AnjuError


class BindingError(AnjuError):
    """A meter cannot be bound to that gateway (not one of the meter's property)."""


def reading_of(meter: Meter) -> ColumnElement[bool]:
    """The WHERE for one meter's readings: its code, from its bound gateway only."""
    if meter.gateway_id is None:
        return false()
    return and_(Reading.gateway_id == meter.gateway_id, Reading.meter_id == meter.code)


def readings_join() -> ColumnElement[bool]:
    """The ON joining readings to the meters bound to the gateways that sent them."""
    return and_(Reading.gateway_id == Meter.gateway_id, Reading.meter_id == Meter.code)


def org_meter(session: Session, org_id: int, code: str) -> Meter | None:
    return session.scalars(select(Meter).where(Meter.code == code, Meter.org_id == org_id)).first()


def check_gateway(session: Session, property_id: int, gateway_id: str) -> Gateway:
    """The gateway, if it is placed in the property; the same error whether it exists elsewhere
    or not at all, so the answer reveals no other property's gateways."""
    gateway = session.get(Gateway, gateway_id)
    if gateway is None or gateway.property_id != property_id:
        raise BindingError(f"no gateway {gateway_id!r} in property {property_id}")
    return gateway


def bind(session: Session, meter: Meter, gateway_id: str | None) -> None:
    """Bind the meter to a gateway of its property (None: unbind; it then gets no readings)."""
    if gateway_id is not None:
        check_gateway(session, meter.property_id, gateway_id)
    meter.gateway_id = gateway_id


def bound_codes(session: Session, gateway_id: str) -> list[str]:
    return list(
        session.scalars(
            select(Meter.code).where(Meter.gateway_id == gateway_id).order_by(Meter.code)
        )
    )


def foreign_pairs(session: Session, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """The `(gateway, code)` pairs whose code names a meter none of which is bound to that
    gateway. A code no meter has is not foreign: gateways go in before every meter is entered,
    and such readings count for no one until a meter with that code is bound to that gateway."""
    wanted = set(pairs)
    if not wanted:
        return set()
    codes = sorted({code for _, code in wanted})
    rows = session.execute(select(Meter.code, Meter.gateway_id).where(Meter.code.in_(codes)))
    known: set[str] = set()
    bound: set[tuple[str | None, str]] = set()
    for code, gateway_id in rows:
        known.add(code)
        bound.add((gateway_id, code))
    return {(g, c) for g, c in wanted if c in known and (g, c) not in bound}


def rebind(
    session: Session, gateway_id: str, *, bind: Sequence[str], unbind: Sequence[str]
) -> None:
    """Bind (unbind) the meters of these codes to the gateway: meters of its property only."""
    gateway = session.get(Gateway, gateway_id)
    if gateway is None:
        raise BindingError(f"no gateway {gateway_id!r} (anju cloud gateway add)")
    codes = [*bind, *unbind]
    if not codes:
        return
    if gateway.property_id is None:
        raise BindingError(f"gateway {gateway_id!r} is in no property (gateway add --property)")
    org_id = session.get_one(Property, gateway.property_id).org_id
    found: dict[str, Meter] = {}
    for code in codes:
        meter = org_meter(session, org_id, code)
        if meter is None or meter.property_id != gateway.property_id:
            raise BindingError(f"no meter {code!r} in property {gateway.property_id}")
        found[code] = meter
    for code in unbind:
        if found[code].gateway_id == gateway_id:
            found[code].gateway_id = None
    for code in bind:
        found[code].gateway_id = gateway_id
