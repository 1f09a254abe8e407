"""The remote configuration: signed `down/config` payloads applied over the gateway's own file.

A payload is checked in the order of `protocols.mqtt.downlink.decode_config` (size, signature,
schema, address), then its version against the applied one (a retained copy delivered again, or
an older version replayed, changes nothing), then against this gateway: the configuration it
makes (the file's, with the remote buses, doors, intervals and link limits over it) must pass
the file's own schema, and every poller and door it adds or changes must build (edge.parts).
Only then is it written next to the store (a temporary file with mode 0600, fsync, rename) and
run: only the buses and doors that changed are replaced, an interval is taken at once, the
uplink takes its new limits with its next batch. A payload that fails keeps the previous
configuration running and is reported as `config_error` in `up/state`.

Remote door paths that are relative are taken from the store's folder (where the file is).
The file holds the signed payload as received, so on start it is verified again like any other.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from edge.config import GatewayConfig, UplinkSettings
from edge.door.config import door_relative_to
from edge.parts import Change, Parts
from protocols.access.signing import AccessRefusedError, Refusal
from protocols.errors import AnjuError
from protocols.mqtt.bounds import MAX_DETAIL_CHARS
from protocols.mqtt.downlink import Config, decode_config, first_error

if TYPE_CHECKING:
    from protocols.ed25519 import PublicKey

log = logging.getLogger(__name__)

FILE_NAME = "remote-config.json"


class ConfigRefusedError(Exception):
    """A signed config this gateway cannot apply (the schema of its own file refuses it)."""


def write_atomically(path: Path, data: bytes) -> None:
    """`data` at `path` whole or not at all: a crash leaves the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def merged_link(base: UplinkSettings, config: Config) -> UplinkSettings:
    """The file's link settings with the remote ones over them, through the file's schema."""
    remote = config.link.model_dump(exclude_none=True)
    if config.state_interval_s is not None:
        remote["state_interval_s"] = config.state_interval_s
    try:
        return UplinkSettings.model_validate(base.model_dump() | remote)
    except ValidationError as exc:
        raise ConfigRefusedError(f"link.{first_error(exc)}") from None


class RemoteConfig:
    def __init__(
        self,
        base: GatewayConfig,
        key: PublicKey | None,
        parts: Parts,
        on_link: Callable[[UplinkSettings], None],
    ) -> None:
        self._base = base
        self._key = key
        self._parts = parts
        self._on_link = on_link
        self.path = base.store.path.with_name(FILE_NAME)
        self.version: int | None = None
        self.error: str | None = None

    def load(self) -> None:
        """The configuration last applied, if any, else the file's. One that no longer
        verifies or fits (a new key, a profile gone) is logged and left out: the file's runs.
        A file whose own parts do not build stops the start (raises)."""
        try:
            payload = self.path.read_bytes()
        except FileNotFoundError:
            payload = b""
        if payload and not self.deliver(payload):
            log.warning("[%s] kept the file's configuration: %s", self._gid, self.error)
        if self.version is None:
            self._parts.commit(self._parts.prepare(self._base.buses, self._base.doors))

    @property
    def _gid(self) -> str:
        return self._base.gateway_id

    def deliver(self, payload: bytes) -> bool:
        """Apply `payload` if it is a newer config for this gateway; True when applied. A
        refusal other than a replay is kept in `error` for the next `up/state`. An empty payload
        is a retained config being cleared: nothing to apply."""
        checked = self._checked(payload)
        if checked is None:
            return False
        try:
            self._persist(payload)
        except OSError as exc:
            return self._refuse(f"version {checked[0].version}: {exc}")
        return self._run(*checked)

    async def receive(self, payload: bytes) -> bool:
        """`deliver` for a running gateway: the file is written in a thread, so its fsyncs do
        not hold up the pollers and doors meanwhile."""
        checked = self._checked(payload)
        if checked is None:
            return False
        try:
            await asyncio.to_thread(self._persist, payload)
        except OSError as exc:
            return self._refuse(f"version {checked[0].version}: {exc}")
        return self._run(*checked)

    def _checked(self, payload: bytes) -> tuple[Config, GatewayConfig, Change] | None:
        if not payload:
            return None
        try:
            config = decode_config(payload, self._key, gateway_id=self._gid)
            effective, change = self._check(config)
        except AccessRefusedError as exc:
            if exc.reason is not Refusal.REPLAYED:
                self._refuse(str(exc))
            else:
                log.debug("[%s] config %s", self._gid, exc)
            return None
        except ConfigRefusedError as exc:
            self._refuse(f"version {config.version}: {exc}")
            return None
        return config, effective, change

    def _persist(self, payload: bytes) -> None:
        if payload != self._stored():
            write_atomically(self.path, payload)

    def _run(self, config: Config, effective: GatewayConfig, change: Change) -> bool:
        self._parts.commit(change)
        self._on_link(effective.link)
        self.version, self.error = config.version, None
        log.info("[%s] applied remote configuration version %d", self._gid, config.version)
        return True

    def _stored(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def _refuse(self, error: str) -> bool:
        log.warning("[%s] refused a remote configuration: %s", self._gid, error)
        self.error = error[:MAX_DETAIL_CHARS]
        return False

    def _check(self, config: Config) -> tuple[GatewayConfig, Change]:
        if self.version is not None and config.version <= self.version:
            raise AccessRefusedError(
                Refusal.REPLAYED, f"version {config.version} is not after {self.version}"
            )
        effective = self.effective(config)
        try:
            change = self._parts.prepare(effective.buses, effective.doors)
        except (AnjuError, ValueError) as exc:
            raise ConfigRefusedError(str(exc)) from None
        return effective, change

    def effective(self, config: Config) -> GatewayConfig:
        """The file's configuration with `config` over it, through the file's schema."""
        base = self._base
        buses = list(base.buses if config.buses is None else config.buses)
        named = {bus.name for bus in buses}
        for name in config.poll_interval_s:
            if name not in named:
                raise ConfigRefusedError(f"poll_interval_s.{name}: no bus of that name")
        buses = [
            bus.model_copy(update={"poll_interval_s": config.poll_interval_s[bus.name]})
            if bus.name in config.poll_interval_s
            else bus
            for bus in buses
        ]
        folder = self.path.parent
        doors = (
            base.doors
            if config.doors is None
            else [door_relative_to(door, folder) for door in config.doors]
        )
        link = merged_link(base.link, config)
        try:
            return GatewayConfig.model_validate(
                dict(base) | {"buses": buses, "doors": doors, "link": link}
            )
        except ValidationError as exc:
            raise ConfigRefusedError(first_error(exc)) from None
