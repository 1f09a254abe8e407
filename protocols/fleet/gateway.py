"""What a gateway runs: its Modbus buses (and the meters on them) and its doors.

One schema for the gateway's own YAML file (edge/config.py) and for the buses and doors the
cloud sends in a remote configuration (protocols/mqtt/downlink.py), so the cloud refuses exactly
what the gateway would. Paths stay as written: the gateway resolves relative ones (edge).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from protocols.face.threshold import DEFAULT_THRESHOLD
from protocols.mqtt.bounds import MAX_DETAIL_CHARS, Name
from protocols.text import CLEAN, check_text

MAX_BUSES = 64
MAX_DEVICES = 2048  # per bus; a TCP bus may span many hosts
MAX_DOORS = 64
Address = Annotated[str, Field(min_length=1, max_length=255, pattern=CLEAN)]
Seconds = Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)]
MAC = r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$"


def _clean_path(path: Path) -> Path:
    check_text(str(path), MAX_DETAIL_CHARS)
    return path


FilePath = Annotated[Path, AfterValidator(_clean_path)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _check_host_port(value: str | None) -> str | None:
    if value is not None:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected HOST:PORT")
    return value


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host, int(port)


class MeterDevice(_Strict):
    id: Name
    unit_id: Annotated[int, Field(ge=1, le=247)]
    profile: Address
    # A TCP bus may span hosts: a meter with its own Modbus TCP interface names it here.
    tcp: Address | None = None
    # Narrow the profile's read limits for a meter (or converter) that accepts less.
    max_registers: Annotated[int | None, Field(ge=1, le=125)] = None
    max_gap: Annotated[int | None, Field(ge=0, le=125)] = None

    _tcp = field_validator("tcp")(_check_host_port)


class ModbusBus(_Strict):
    name: Name
    tcp: Address | None = None
    serial: Address | None = None
    baud: Annotated[int, Field(ge=300, le=921600)] = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    poll_interval_s: Seconds = 60.0
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    retries: Annotated[int, Field(ge=0, le=5)] = 1
    # TCP: hosts polled at once; a serial port is always one transaction at a time.
    max_concurrent: Annotated[int, Field(ge=1, le=256)] = 8
    # Consecutive failed polls before a meter counts as offline and is retried on backoff.
    offline_after: Annotated[int, Field(ge=1, le=100)] = 3
    backoff_cap_s: Seconds = 300.0
    devices: Annotated[list[MeterDevice], Field(max_length=MAX_DEVICES)] = []

    _tcp = field_validator("tcp")(_check_host_port)

    @model_validator(mode="after")
    def _devices(self) -> ModbusBus:
        if (self.tcp is None) == (self.serial is None):
            raise ValueError(f"bus {self.name!r}: set exactly one of 'tcp' or 'serial'")
        ids = [d.id for d in self.devices]
        if len(set(ids)) != len(ids):
            raise ValueError(f"bus {self.name!r}: device ids must be unique")
        seen: set[tuple[str | None, int]] = set()
        for device in self.devices:
            if self.serial is not None and device.tcp is not None:
                raise ValueError(f"device {device.id!r}: 'tcp' is for TCP buses only")
            where = (device.tcp or self.tcp, device.unit_id)
            if where in seen:
                raise ValueError(f"device {device.id!r}: unit_id {device.unit_id} used twice")
            seen.add(where)
        return self

    @property
    def tcp_address(self) -> tuple[str, int]:
        assert self.tcp is not None
        return _host_port(self.tcp)

    def device_address(self, device: MeterDevice) -> tuple[str, int]:
        """The TCP host:port a device is reached at (its own, or the bus's)."""
        return _host_port(device.tcp) if device.tcp else self.tcp_address


MAX_PROXIES = 32  # one per floor of a tall building, with room to spare
# A DNS name or an IPv4 address; no scheme, no port, no spaces.
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = rf"^{_LABEL}(\.{_LABEL})*$"


class EsphomeProxy(_Strict):
    """One ESPHome Bluetooth proxy a gateway reaches locks through (its native API)."""

    host: Annotated[str, Field(max_length=253, pattern=HOSTNAME)]
    port: Annotated[int, Field(ge=1, le=65535)] = 6053
    # The device's API encryption key (`api: encryption: key:` in its ESPHome YAML): 32 bytes
    # in base64, in a 0600 file. None: a plain-text API, for a proxy on an isolated network only.
    noise_psk_file: FilePath | None = None


class BleLockSettings(_Strict):
    """A BLE lock's settings (a door's `ble:` block when `lock: ble`)."""

    address: Annotated[str, Field(pattern=MAC)]
    # The lock's 128-bit key from installation: 16 raw bytes or 32 hex digits, mode 0600.
    key_file: FilePath
    # Counters that must survive a restart (replay protection); JSON, written 0600.
    counter_file: FilePath
    adapter: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.:-]+$")] = (
        "hci0"
    )
    # One try: connect if needed, write, wait for the authenticated answer.
    command_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    attempts: Annotated[int, Field(ge=1, le=10)] = 3
    # Status polls keep the link up and collect the events the lock queued meanwhile.
    poll_s: Annotated[float, Field(ge=1, le=3600)] = 60.0
    # `host`: this host's adapter; `esphome`: the ESPHome Bluetooth proxies in `proxies`
    # (edge/door/ble/esphome.py). DEMO/TEST ONLY: `emulated` drives an emulated lock on a
    # virtual radio inside the gateway (edge/door/ble/emulated.py).
    radio: Literal["host", "esphome", "emulated"] = "host"
    proxies: Annotated[tuple[EsphomeProxy, ...], Field(max_length=MAX_PROXIES)] = ()

    @model_validator(mode="after")
    def _proxies(self) -> BleLockSettings:
        if (self.radio == "esphome") != bool(self.proxies):
            raise ValueError("`proxies` go with `radio: esphome`, and it needs at least one")
        where = [(p.host.lower(), p.port) for p in self.proxies]
        if len(set(where)) != len(where):
            raise ValueError("each proxy is listed once")
        return self


class SnapshotSettings(_Strict):
    """Privacy: no face image is kept unless a site opts in. When it does, the frame at each
    decision is kept encrypted (AES-256-GCM, key in `key_file`), bounded by count and age."""

    enabled: bool = False
    dir: FilePath = Path("data/snapshots")  # one sub-folder per door
    # 32 random bytes, raw or as 64 hex digits (`anju face keygen FILE` writes one)
    key_file: FilePath | None = None
    max_count: Annotated[int, Field(ge=1, le=100_000)] = 200
    max_age_h: Annotated[float, Field(gt=0, le=90 * 24)] = 72.0
    jpeg_quality: Annotated[int, Field(ge=30, le=95)] = 80

    @model_validator(mode="after")
    def _key(self) -> SnapshotSettings:
        if self.enabled and self.key_file is None:
            raise ValueError("key_file is required when snapshots are enabled")
        return self


class KeypadSettings(_Strict):
    """A door's `keypad:` block: a serial keypad whose PINs and offline codes the access list
    decides (edge/door/keypad.py, docs/access.md)."""

    port: FilePath  # the keypad's serial device, e.g. /dev/ttyUSB1
    baud: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 9600
    # How long an unlock from the keypad holds the bolt open.
    unlock_hold_s: Annotated[float, Field(gt=0, le=60)] = 5.0


class DoorConfig(_Strict):
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    # rtsp://…, usb:N, a video file or a folder of images
    source: Annotated[str, Field(min_length=1, max_length=1024, pattern=CLEAN)]
    # The cloud's gallery export for this door (JSON); none: the faces and rights of the
    # gateway's access list (down/access, docs/access.md) decide.
    gallery: FilePath | None = None
    # The gallery file is reloaded when it changes; this is how often the door looks.
    gallery_check_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    models_dir: FilePath | None = None  # default: ANJU_MODELS_DIR or ~/.cache/anju/models
    # `simulated` logs requests; `ble` drives a BLE lock (docs/locks.md) set up in `ble:`.
    lock: Literal["simulated", "ble"] = "simulated"
    ble: BleLockSettings | None = None
    threads: Annotated[int, Field(ge=1, le=16)] = 2
    detect_side: Annotated[int, Field(ge=160, le=1280, multiple_of=32)] = 320
    threshold: Annotated[float, Field(gt=0, lt=1)] = DEFAULT_THRESHOLD
    confirm_n: Annotated[int, Field(ge=1, le=100)] = 3
    confirm_m: Annotated[int, Field(ge=1, le=100)] = 5
    unlock_hold_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    max_fps: Annotated[float, Field(gt=0, le=60)] = 15.0
    snapshots: SnapshotSettings = SnapshotSettings()
    keypad: KeypadSettings | None = None

    @model_validator(mode="after")
    def _window(self) -> DoorConfig:
        if self.confirm_n > self.confirm_m:
            raise ValueError("confirm_n must not exceed confirm_m")
        if (self.lock == "ble") != (self.ble is not None):
            raise ValueError("a `ble:` block goes with `lock: ble`, and only with it")
        return self


def check_parts(buses: Sequence[ModbusBus], doors: Sequence[DoorConfig]) -> None:
    """What holds across a gateway's buses and doors: each is named once (a bus's poller and a
    door's service are found, replaced and reported by that name). Raises ValueError."""
    names = [bus.name for bus in buses]
    if len(set(names)) != len(names):
        raise ValueError("bus names must be unique")
    door_ids = [door.id for door in doors]
    if len(set(door_ids)) != len(door_ids):
        raise ValueError("door ids must be unique")
