"""The remote configuration: signed `down/config` payloads applied over the gateway's own file.

A payload is checked in the order of `protocols.mqtt.downlink.decode_config` (size, signature,
schema, address), then its version against the applied one (a retained copy delivered again, or
an older version replayed, changes nothing), then against this gateway (every bus it names must
be in the file, the merged link settings must pass the file's own schema). Only then is it
written next to the store (a temporary file with mode 0600, fsync, rename) and applied: each
poller takes its bus's new interval at once, the uplink its new limits with its next batch.
Nothing restarts, so no reading and no open door is lost. A payload that fails keeps the
previous configuration and is reported as `config_error` in `up/state`.

The file holds the signed payload as received, so on start it is verified again like any other.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from edge.config import GatewayConfig, UplinkSettings
from protocols.access.signing import AccessRefusedError, Refusal
from protocols.mqtt.bounds import MAX_DETAIL_CHARS
from protocols.mqtt.downlink import Config, decode_config, first_error

log = logging.getLogger(__name__)

FILE_NAME = "remote-config.json"


class Poller(Protocol):
    @property
    def name(self) -> str: ...

    def set_poll_interval(self, seconds: float) -> None: ...


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
        key: Ed25519PublicKey | None,
        pollers: Sequence[Poller],
        on_link: Callable[[UplinkSettings], None],
    ) -> None:
        self._base = base
        self._key = key
        self._pollers = {p.name: p for p in pollers}
        self._on_link = on_link
        self.path = base.store.path.with_name(FILE_NAME)
        self.version: int | None = None
        self.error: str | None = None

    def load(self) -> None:
        """The configuration last applied, if any; one that no longer verifies or fits the file
        (a new key, a bus renamed) is logged and left out: the file's own values run."""
        try:
            payload = self.path.read_bytes()
        except FileNotFoundError:
            return
        if not self.deliver(payload):
            log.warning("[%s] kept the file's configuration: %s", self._gid, self.error)

    @property
    def _gid(self) -> str:
        return self._base.gateway_id

    def deliver(self, payload: bytes) -> bool:
        """Apply `payload` if it is a newer config for this gateway; True when applied. A
        refusal other than a replay is kept in `error` for the next `up/state`. An empty payload
        is a retained config being cleared: nothing to apply."""
        if not payload:
            return False
        try:
            config = decode_config(payload, self._key, gateway_id=self._gid)
            link = self._check(config)
            if payload != self._stored():
                write_atomically(self.path, payload)
        except AccessRefusedError as exc:
            if exc.reason is Refusal.REPLAYED:
                log.debug("[%s] config %s", self._gid, exc)
                return False
            return self._refuse(str(exc))
        except (ConfigRefusedError, OSError) as exc:
            return self._refuse(f"version {config.version}: {exc}")
        self._apply(config, link)
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

    def _check(self, config: Config) -> UplinkSettings:
        if self.version is not None and config.version <= self.version:
            raise AccessRefusedError(
                Refusal.REPLAYED, f"version {config.version} is not after {self.version}"
            )
        for bus in config.poll_interval_s:
            if bus not in self._pollers:
                raise ConfigRefusedError(f"poll_interval_s.{bus}: no bus of that name")
        return merged_link(self._base.link, config)

    def _apply(self, config: Config, link: UplinkSettings) -> None:
        for bus in self._base.buses:
            interval = config.poll_interval_s.get(bus.name, bus.poll_interval_s)
            self._pollers[bus.name].set_poll_interval(interval)
        self._on_link(link)
