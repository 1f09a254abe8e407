"""Who hears of alarms: a user's own subscriptions, and the deliveries that gave up (retried by
a manager)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import delete, select

from cloud.api.deps import KeysDep, NowDep, SessionDep, guard, not_found, scoped_get
from cloud.api.paging import PathId
from cloud.api.problems import ProblemError
from cloud.api.scope import PropertyQ, scope_filter
from cloud.maintenance.alarms import KIND_RE
from cloud.maintenance.notify import channels, deliveries
from cloud.maintenance.notify.egress import EgressPolicy
from cloud.models import Alarm, AlarmDelivery, AlarmSubscription
from cloud.security.authz import Permission, Principal

router = APIRouter(tags=["alarms"])
P = Permission
Me = Annotated[Principal, guard(P.ALARMS_READ, "self")]


class SubscriptionIn(BaseModel):
    channel: str = Field(max_length=16)
    target: str = Field(max_length=channels.MAX_TARGET)
    secret: str = Field(default="", max_length=channels.MAX_SECRET)
    kinds: list[Annotated[str, Field(max_length=32)]] = Field(default_factory=list, max_length=50)


class SubscriptionOut(BaseModel):
    id: int
    channel: str
    target: str
    has_secret: bool
    kinds: list[str]

    @classmethod
    def of(cls, s: AlarmSubscription) -> SubscriptionOut:
        return cls(id=s.id, channel=s.channel, target=s.target, has_secret=s.secret_enc is not None,
                   kinds=list(s.kinds))  # fmt: skip


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut]


@router.get("/alarm-subscriptions")
def list_subscriptions(me: Me, session: SessionDep) -> SubscriptionList:
    rows = session.scalars(
        select(AlarmSubscription)
        .where(AlarmSubscription.user_id == me.user_id)
        .order_by(AlarmSubscription.id)
    )
    return SubscriptionList(items=[SubscriptionOut.of(s) for s in rows])


@router.post("/alarm-subscriptions", status_code=201)
def subscribe(
    body: SubscriptionIn, me: Me, session: SessionDep, keys: KeysDep, request: Request
) -> SubscriptionOut:
    """Always for the caller: a subscription reaches only its owner's organisation's alarms.
    The robot's secret is kept sealed and never shown again."""
    policy: EgressPolicy = request.app.state.settings.webhook_policy
    try:
        channels.check_target(body.channel, body.target, body.secret, policy)
    except channels.TargetError as exc:
        raise ProblemError(422, str(exc)) from None
    if bad := [k for k in body.kinds if not KIND_RE.match(k)]:
        raise ProblemError(422, f"bad alarm kind {bad[0][:40]!r}")
    sub = AlarmSubscription(user_id=me.user_id, channel=body.channel, target=body.target,
                            secret_enc=channels.seal_secret(keys, me.user_id, body.secret),
                            kinds=sorted(set(body.kinds)))  # fmt: skip
    session.add(sub)
    session.commit()
    return SubscriptionOut.of(sub)


@router.delete("/alarm-subscriptions/{subscription_id}", status_code=204)
def unsubscribe(subscription_id: PathId, me: Me, session: SessionDep) -> Response:
    """Idempotent, and the same answer for someone else's id: only the caller's own go."""
    own = select(AlarmSubscription.id).where(
        AlarmSubscription.id == subscription_id, AlarmSubscription.user_id == me.user_id
    )
    session.execute(delete(AlarmDelivery).where(AlarmDelivery.subscription_id.in_(own)))
    session.execute(delete(AlarmSubscription).where(AlarmSubscription.id.in_(own)))
    session.commit()
    return Response(status_code=204)


class DeliveryOut(BaseModel):
    id: int
    alarm_id: int
    property_id: int | None
    kind: str
    channel: str
    event: str
    state: str
    attempts: int
    last_error: str
    next_at: datetime


class DeliveryList(BaseModel):
    items: list[DeliveryOut]


def delivery_out(d: AlarmDelivery, a: Alarm, s: AlarmSubscription) -> DeliveryOut:
    return DeliveryOut(id=d.id, alarm_id=a.id, property_id=a.property_id, kind=a.kind,
                       channel=s.channel, event=d.event, state=d.state, attempts=d.attempts,
                       last_error=d.last_error, next_at=d.next_at)  # fmt: skip


@router.get("/alarm-deliveries")
def list_dead(
    me: Annotated[Principal, guard(P.ALARMS_MANAGE, "list")],
    session: SessionDep,
    property_id: PropertyQ = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryList:
    """The dead-letter list: deliveries that gave up, newest first."""
    rows = session.execute(
        select(AlarmDelivery, Alarm, AlarmSubscription)
        .join(Alarm, Alarm.id == AlarmDelivery.alarm_id)
        .join(AlarmSubscription, AlarmSubscription.id == AlarmDelivery.subscription_id)
        .where(AlarmDelivery.state == "dead", scope_filter(me, Alarm.property_id, property_id))
        .order_by(AlarmDelivery.id.desc())
        .limit(limit)
    ).all()
    return DeliveryList(items=[delivery_out(d, a, s) for d, a, s in rows])


@router.post("/alarm-deliveries/{delivery_id}/retry")
def retry(
    delivery_id: PathId,
    me: Annotated[Principal, guard(P.ALARMS_MANAGE, "path")],
    session: SessionDep,
    now: NowDep,
) -> DeliveryOut:
    """Back to pending with a fresh attempt count; the next job run sends it."""
    row = session.get(AlarmDelivery, delivery_id)
    if row is None:
        raise not_found("alarm delivery", delivery_id)
    alarm = scoped_get(session, me, Alarm, row.alarm_id)  # 404 outside the caller's scope
    try:
        deliveries.retry(row, now)
    except ValueError as exc:
        raise ProblemError(409, str(exc)) from None
    session.commit()
    return delivery_out(row, alarm, session.get_one(AlarmSubscription, row.subscription_id))
