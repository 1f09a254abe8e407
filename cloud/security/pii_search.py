"""Searching tenants by a personal number (ID number, phone): audited, and limited per user.

An exact search answers whether a guess is right, so it is an oracle: the masked phone
`139****5678` leaves 10^4 completions to try. Only roles that may see the field in full search
by it (`authz.may_see`); every search is an audit event (`tenant.search`: who, which fields,
which tenants matched, never the value), and those events are the rate limit's counter:
SEARCHES_PER_WINDOW per user in a sliding WINDOW. Trying every completion of one phone mask
thus takes a user at least 10^4 / 100 = 100 days (50 on average), each guess in the audit log.
(The roles allowed may also reveal the number outright, with a reason; the limit bounds what a
stolen session or a curious insider learns without one.)

The count holds across API processes: the user's row is locked (PostgreSQL; SQLite serialises
writers), the event inserted, and the user's earlier counted events in the window ranked in
the same transaction, so concurrent searches cannot all slip under the limit. The caller
commits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db import as_utc
from cloud.models import AuditEvent, User
from cloud.security import audit
from cloud.security.authz import Principal

ACTION = "tenant.search"
SEARCHES_PER_WINDOW = 100
WINDOW = timedelta(hours=24)


def record(
    session: Session,
    me: Principal,
    now: datetime,
    *,
    fields: Sequence[str],
    matches: list[int],
    property_id: int | None,
) -> int:
    """Audit one search; 0 when it is within the user's limit, else the seconds until the next
    one would be (the event is then recorded as `limited`)."""
    session.execute(select(User.id).where(User.id == me.user_id).with_for_update())
    event = audit.record(
        session,
        me,
        ACTION,
        now,
        target_type="tenant" if len(matches) == 1 else "",
        target_id=matches[0] if len(matches) == 1 else "",
        property_id=property_id,
        detail={"fields": list(fields), "matches": matches},
    )
    session.flush()
    # The oldest of the SEARCHES_PER_WINDOW counted searches before this one: while it is in
    # the window, this search would be one too many.
    limiting = session.scalar(
        select(AuditEvent.ts)
        .where(
            AuditEvent.user_id == me.user_id,
            AuditEvent.action == ACTION,
            AuditEvent.ts > now - WINDOW,
            AuditEvent.outcome == "ok",
            AuditEvent.id != event.id,
        )
        .order_by(AuditEvent.ts.desc(), AuditEvent.id.desc())
        .offset(SEARCHES_PER_WINDOW - 1)
        .limit(1)
    )
    if limiting is None:
        return 0
    event.outcome = "limited"
    return max(1, math.ceil((as_utc(limiting) + WINDOW - now).total_seconds()))
