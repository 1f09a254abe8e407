"""One text rule (protocols/text.py), two surfaces: the wire's types (protocols/mqtt/bounds.py,
what the cloud decodes from gateways) and the API's check of every request (cloud/api/text.py)
take and refuse exactly the same strings."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from cloud.api.problems import install_problem_handlers
from cloud.api.text import refuse_unstorable_text
from protocols.mqtt import bounds
from protocols.mqtt import messages as msg
from protocols.text import printable, text_fault

TS = "2026-03-01T08:00:00+00:00"
TAKEN = ["", "m-1", "电表-1", "emoji 😀", "tab\tand\nline", "\u00ff", "\uffff", "\U0010ffff"]
REFUSED = ["\x00", "a\x00b", "\ud800", "x\udfff", "\udc00\ud800", "电\ud83d"]


def wire_takes(text: str) -> bool:
    """A gateway's telemetry naming meter `m<text>`, decoded from its JSON bytes (escapes
    carry NUL and lone surrogates, as a hostile gateway would send them)."""
    reading = {"seq": 1, "meter": f"m{text}", "point": "energy", "value": 1.5, "ts": TS}
    body = {"schema": 1, "gateway_id": "gw-1", "ts": TS, "seq": 1, "after": 0,
            "readings": [reading]}  # fmt: skip
    try:
        msg.decode(msg.Telemetry, json.dumps(body).encode())
    except msg.MessageError:
        return False
    return True


def data_takes(text: str) -> bool:
    """Free-form data (an event's), checked by bounds.check_data."""
    try:
        bounds.check_data({"k": text})
    except ValueError:
        return False
    return True


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI(dependencies=[Depends(refuse_unstorable_text)])
    install_problem_handlers(app)

    @app.post("/echo")
    def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://anju.test"
    ) as c:
        yield c


async def api_takes(client: httpx.AsyncClient, text: str) -> bool:
    r = await client.post("/echo", content=json.dumps({"name": f"m{text}"}).encode(),
                          headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code in (200, 422), r.text
    return r.status_code == 200


async def test_both_surfaces_take_and_refuse_the_same_strings(client: httpx.AsyncClient) -> None:
    for text in TAKEN + REFUSED:
        expected = text not in REFUSED
        assert (text_fault(text) is None) is expected, repr(text)
        got = (wire_takes(text), data_takes(text), await api_takes(client, text))
        assert got == (expected, expected, expected), repr(text)


BREAKING = st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff"])


@given(st.text(alphabet=st.one_of(st.characters(), BREAKING), max_size=20))
def test_every_form_of_the_rule_agrees(text: str) -> None:
    """text_fault, the wire types' pydantic pattern and check_text say the same of any string,
    surrogates included; printable always makes one that passes."""
    clean = text_fault(text) is None
    try:
        TypeAdapter(bounds.Detail).validate_python(text)
        typed = True
    except ValidationError:
        typed = False
    assert typed is clean
    assert data_takes(text) is clean
    assert text_fault(printable(text, 50)) is None
    assert printable(text, 50) == text[:50] or not clean
