"""A hidden button is not the limit: a page action a role's page does not offer, sent anyway
(as a forged event from the browser would run it), is refused by the route's own permission,
and nothing changes."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from cloud.api.deps import load_principal
from cloud.api.problems import ProblemError
from cloud.api.routes import billing as billing_routes
from cloud.api.routes import billing_rules as rule_routes
from cloud.api.routes import leases as lease_routes
from cloud.console.i18n import Texts
from cloud.console.viewer import Viewer
from cloud.leases.lifecycle import Action
from cloud.models import Lease, LeaseStatus, Payment, User
from cloud.security import tokens
from tests.console.conftest import NOW, Console


def viewer_for(console: Console, username: str) -> Viewer:
    """The Viewer a signed-in page of `username` holds."""
    with console.sessions() as session:
        user = session.scalars(select(User).where(User.username == username)).one()
        token, _expires = tokens.issue(session, user.id, "session", NOW)
        session.commit()
        me = load_principal(session, user, "127.0.0.1")
    app: Any = SimpleNamespace(
        state=SimpleNamespace(clock=lambda: NOW, sessions=console.sessions, keys=None)
    )
    return Viewer(me=me, token=token, texts=Texts("zh_CN", ZoneInfo("Asia/Shanghai")), app=app)


def an_active_lease(console: Console) -> int:
    with console.sessions() as session:
        lease_id = session.scalar(
            select(Lease.id).where(Lease.status == LeaseStatus.ACTIVE).order_by(Lease.id)
        )
    assert lease_id is not None
    return lease_id


def test_finance_cannot_terminate_a_lease(console: Console) -> None:
    lease_id = an_active_lease(console)
    viewer = viewer_for(console, "demo-finance")
    body = lease_routes.TransitionIn(action=Action.TERMINATE, terminated_on=date(2026, 3, 10))
    with pytest.raises(ProblemError) as refused:
        viewer.send(lease_routes.transition, lease_id=lease_id, body=body)
    assert refused.value.status == 403
    with console.sessions() as session:
        assert session.get_one(Lease, lease_id).status is LeaseStatus.ACTIVE


def test_front_desk_cannot_settle_deposits_nor_release_holds(console: Console) -> None:
    lease_id = an_active_lease(console)
    viewer = viewer_for(console, "demo-front_desk")
    with pytest.raises(ProblemError) as settle:
        viewer.send(billing_routes.settle_deposit, lease_id=lease_id,
                    body=billing_routes.SettlementIn())  # fmt: skip
    with pytest.raises(ProblemError) as release:
        viewer.send(rule_routes.release_hold, hold_id=1,
                    body=rule_routes.ReleaseIn(note="let it through"))  # fmt: skip
    with pytest.raises(ProblemError) as run:
        viewer.send(billing_routes.start_run,
                    body=billing_routes.RunIn(property_id=1, period="2026-03"))  # fmt: skip
    received = deposits_received(console, lease_id)
    with pytest.raises(ProblemError) as deposit:
        viewer.send(billing_routes.receive_deposit, lease_id=lease_id,
                    body=billing_routes.DepositPaymentIn(amount_fen=100))  # fmt: skip
    assert [e.value.status for e in (settle, release, run, deposit)] == [403, 403, 403, 403]
    assert deposits_received(console, lease_id) == received


def deposits_received(console: Console, lease_id: int) -> list[int]:
    with console.sessions() as session:
        found = select(Payment.id).where(Payment.lease_id == lease_id, Payment.deposit)
        return list(session.scalars(found))
