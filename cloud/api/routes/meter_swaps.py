"""Recording a meter swap (a unit's meter replaced): both meters the caller's, audited."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from cloud.api.deps import NowDep, SessionDep, flush_or_conflict, guard, scoped_meter
from cloud.api.problems import ProblemError
from cloud.billing.errors import BillingError
from cloud.billing.service.swaps import SwapRequest, record_swap
from cloud.security import audit
from cloud.security.authz import Permission, Principal

router = APIRouter(tags=["billing"])


class SwapOut(BaseModel):
    old_meter_id: str
    new_meter_id: str
    swapped_at: datetime
    old_final: str
    new_initial: str


@router.post("/meters/{meter_id}/swap", status_code=201)
def swap_meter(
    meter_id: Annotated[str, Field(max_length=64)],
    body: SwapRequest,
    me: Annotated[Principal, guard(Permission.METERS_WRITE, "path")],
    session: SessionDep,
    now: NowDep,
) -> SwapOut:
    """Billing counts usage across the swap as (old final - old previous) + (new current -
    new initial). Another organisation's meter is a 404, like one that does not exist."""
    old = scoped_meter(session, me, meter_id)
    new = scoped_meter(session, me, body.new_meter_id)
    try:
        record_swap(session, old, new, body, now=now)
    except BillingError as exc:
        raise ProblemError(422, str(exc)) from None
    flush_or_conflict(session, f"meter {old.code} or {new.code} is in a swap already")
    out = SwapOut(old_meter_id=old.code, new_meter_id=new.code, swapped_at=body.swapped_at,
                  old_final=str(body.old_final), new_initial=str(body.new_initial))  # fmt: skip
    audit.about(session, me, "meter.swap", now, old, detail=out.model_dump(mode="json"))
    session.commit()
    return out
