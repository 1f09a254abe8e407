"""Gateways' desired remote configurations: versions kept whole (a rollback is a new version
with an old body), validated by the message the gateway validates (`protocols.mqtt.downlink.
Config`), signed with the command key and published retained on `down/config`.

A gateway whose `up/state` reports an older applied version than the desired one (restored
from a backup, or the retained message lost with a broker's store) is sent the desired version
again by ingest, at most once per RESEND_AFTER for one version, and not when it reported
refusing that very version (it would refuse it again).
"""

from __future__ import annotations

import uuid
from asyncio import timeout as asyncio_timeout
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.config import Settings
from cloud.db import as_utc
from cloud.models import GatewayConfigVersion
from cloud.mqtt import cloud_mqtt_client
from protocols.errors import AnjuError
from protocols.mqtt.downlink import Config, encode_config, first_error
from protocols.mqtt.messages import State
from protocols.mqtt.topics import Kind, topic
from runtime.mqtt_client import connection

RESEND_AFTER = timedelta(seconds=60)
# The envelope is the cloud's to fill; a body naming one of these is refused.
ENVELOPE = frozenset({"schema", "gateway_id", "epoch", "seq", "ts", "version"})


class InvalidConfigError(AnjuError):
    """A body the gateway's schema refuses; the message names the field."""


def message(gateway_id: str, version: int, body: dict[str, Any], ts: datetime) -> Config:
    taken = sorted(ENVELOPE & body.keys())
    if taken:
        raise InvalidConfigError(f"{taken[0]}: set by the cloud, not in the body")
    fields = {"gateway_id": gateway_id, "seq": version, "version": version, "ts": ts}
    try:
        return Config.model_validate(body | fields)
    except ValidationError as exc:
        raise InvalidConfigError(first_error(exc)) from None


def latest(session: Session, gateway_id: str) -> GatewayConfigVersion | None:
    return session.scalars(
        select(GatewayConfigVersion)
        .where(GatewayConfigVersion.gateway_id == gateway_id)
        .order_by(GatewayConfigVersion.version.desc())
        .limit(1)
    ).first()


def add_version(
    session: Session, gateway_id: str, body: dict[str, Any], *, by: str, now: datetime
) -> tuple[GatewayConfigVersion, Config]:
    """The next version of `gateway_id`'s configuration (validated; not committed)."""
    newest = session.scalar(
        select(func.max(GatewayConfigVersion.version)).where(
            GatewayConfigVersion.gateway_id == gateway_id
        )
    )
    version = (newest or 0) + 1
    config = message(gateway_id, version, body, now)
    row = GatewayConfigVersion(
        gateway_id=gateway_id, version=version, body=body, created_by=by, created_at=now
    )
    session.add(row)
    return row, config


async def publish(
    settings: Settings, key: Ed25519PrivateKey, config: Config, *, timeout_s: float = 5.0
) -> None:
    """Signed and retained on the gateway's `down/config`, so it meets the config whenever it
    connects. Raises `aiomqtt.MqttError` or `TimeoutError`."""
    payload = encode_config(config, key)
    client = cloud_mqtt_client(settings, f"anju-config-{uuid.uuid4().hex[:8]}")
    async with asyncio_timeout(timeout_s), connection(client):
        await client.publish(topic(config.gateway_id, Kind.CONFIG), payload, qos=1, retain=True)


def behind(session: Session, states: Sequence[State]) -> list[Config]:
    """The desired config of each gateway whose newest online state in `states` reports an
    older applied version, unless it reported refusing that version."""
    newest = {s.gateway_id: s for s in sorted(states, key=lambda s: s.ts)}
    out = []
    for gid, state in sorted(newest.items()):
        if not state.online:
            continue
        row = latest(session, gid)
        if row is None or (state.config_version or 0) >= row.version:
            continue
        if (state.config_error or "").startswith(f"version {row.version}:"):
            continue
        try:
            out.append(message(gid, row.version, row.body, as_utc(row.created_at)))
        except InvalidConfigError:  # a body the schema no longer takes: the API shows drift
            continue
    return out


class Resender:
    """Sends gateways that drifted behind their desired version (ingest calls it with the
    states it stores). What it sent when is this process's memory: a restart may send a
    version once more, which the gateway takes as a replay."""

    def __init__(self, signing_key: Callable[[], Ed25519PrivateKey]) -> None:
        self._signing_key = signing_key
        self._sent: dict[str, tuple[int, datetime]] = {}

    def behind(self, session: Session, states: Sequence[State]) -> list[Config]:
        return behind(session, states)

    def due(self, configs: Sequence[Config], now: datetime) -> list[tuple[str, bytes]]:
        """(topic, signed payload) of each config not sent again within RESEND_AFTER.
        Raises ConfigError when there is no key to sign with."""
        out = []
        for config in configs:
            last = self._sent.get(config.gateway_id)
            if last is not None and last[0] == config.version and now - last[1] < RESEND_AFTER:
                continue
            payload = encode_config(config, self._signing_key())
            self._sent[config.gateway_id] = (config.version, now)
            out.append((topic(config.gateway_id, Kind.CONFIG), payload))
        return out
