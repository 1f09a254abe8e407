"""Recording a meter swap: the old meter's final reading and the new one's first, so that a
unit's usage across the swap is (old final - old previous) + (new current - new initial).

Both meters must be submeters of the same unit and utility; a meter is swapped out once and in
once, and never back into its own chain. The values fit the meter's digits when it has them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from cloud.billing.bounds import FIRST_DAY, Quantity
from cloud.billing.errors import BillingError
from cloud.models import Meter, MeterSwap

EARLIEST = datetime.combine(FIRST_DAY, datetime.min.time(), UTC)


class SwapRequest(BaseModel):
    """A swap as the API and the CLI take it, bounded like every quantity billing takes in."""

    new_meter_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="The meter installed in the old one's place.",
    )
    swapped_at: Annotated[AwareDatetime, Field(ge=EARLIEST)]
    old_final: Quantity  # the old meter's last reading
    new_initial: Quantity  # the new meter's first reading


def record_swap(
    session: Session, old: Meter, new: Meter, swap: SwapRequest, *, now: datetime
) -> MeterSwap:
    """Add the swap (the caller commits); BillingError says why one cannot be."""
    swapped_at, old_final, new_initial = swap.swapped_at, swap.old_final, swap.new_initial
    if swapped_at.tzinfo is None:
        raise BillingError("the swap time needs a timezone")
    if swapped_at > now:
        raise BillingError("a swap cannot be recorded before it happens")
    if old.id == new.id:
        raise BillingError("a meter cannot replace itself")
    if old.unit_id is None or old.unit_id != new.unit_id:
        raise BillingError("both meters must be submeters of the same unit")
    if old.utility != new.utility:
        raise BillingError(f"{new.code} measures {new.utility}, not {old.utility}")
    for meter, value in ((old, old_final), (new, new_initial)):
        if meter.digits is not None and value >= 10**meter.digits:
            raise BillingError(f"{value} does not fit meter {meter.code}'s {meter.digits} digits")
    taken = session.scalar(
        select(MeterSwap.id).where(
            or_(
                MeterSwap.old_meter_id == old.id,
                MeterSwap.new_meter_id == new.id,
                MeterSwap.old_meter_id == new.id,
                MeterSwap.new_meter_id == old.id,
            )
        )
    )
    if taken is not None:
        raise BillingError(f"meter {old.code} or {new.code} is in a swap already")
    row = MeterSwap(
        old_meter_id=old.id,
        new_meter_id=new.id,
        swapped_at=swapped_at,
        old_final=old_final,
        new_initial=new_initial,
    )
    session.add(row)
    return row
