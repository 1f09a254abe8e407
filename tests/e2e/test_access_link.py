"""Access lists over the real link: the cloud's key signs, the broker carries `down/access`,
`run_gateway` verifies and applies; the applied and refused lists reach the cloud as events,
and the applied version in `up/state`."""

from __future__ import annotations

import pytest

from protocols.access.signing import encode_signed
from protocols.mqtt.topics import Kind
from tests.access_lists import access_list, face, right
from tests.e2e.command_harness import KEY, Clock, Cloud, gateway
from tests.e2e.link_harness import Link, wait_until

pytestmark = pytest.mark.timeout(90)


async def test_a_signed_list_is_applied_and_a_forged_one_refused(link: Link) -> None:
    clock = Clock()
    listed = access_list(
        3,
        gateway_id=link.gateway_id,
        credentials=[face("f-ann", "ann")],
        rights=[right("r", "ann")],
    )
    forged = access_list(4, gateway_id=link.gateway_id)
    async with link.ingest(commands=True) as worker, gateway(link, clock):
        cloud = Cloud(link, worker, clock)
        await cloud.publish(Kind.ACCESS, encode_signed(listed, KEY))
        await cloud.publish(Kind.ACCESS, encode_signed(forged, KEY)[:-1] + b" ")

        async def both() -> bool:
            types = [t for _, t, _, _ in link.stored_events()]
            return "access.list_applied" in types and "access.list_refused" in types

        await wait_until(both, 20, "the access list events")
    events = {t: d for _, t, _, d in link.stored_events() if t.startswith("access.")}
    assert events["access.list_applied"]["version"] == 3
    assert events["access.list_refused"]["reason"] == "bad_signature"
