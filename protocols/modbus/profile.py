"""Meter profiles: a declarative table of points, validated at load.

Addresses are 0-based wire addresses (a manual's 30001 / 40001 is 0x0000). A profile may narrow
the read planner's limits for meters that accept less than the protocol's 125 registers or that
refuse reads across unmapped registers.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocols.errors import ConfigError

MAX_READ_REGISTERS = 125  # Modbus limit for FC03/FC04 (a 253-byte PDU)
DEFAULT_MAX_GAP = 64  # unused registers a merged read may span; profiles narrow it


class FunctionCode(IntEnum):
    HOLDING = 3
    INPUT = 4


class DataType(StrEnum):
    U16 = "u16"
    I16 = "i16"
    U32 = "u32"
    I32 = "i32"
    F32 = "f32"
    F64 = "f64"
    STRING = "string"
    # TUF-2000 style totaliser: a LONG integer part followed by a REAL4 fraction (4 registers).
    I32_F32 = "i32+f32"

    @property
    def fixed_words(self) -> int | None:
        """Registers the type occupies, or None when the point gives its own `length`."""
        return {
            "u16": 1,
            "i16": 1,
            "u32": 2,
            "i32": 2,
            "f32": 2,
            "f64": 4,
            "i32+f32": 4,
        }.get(self.value)


class Order(StrEnum):
    BIG = "big"
    LITTLE = "little"


class Point(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    name: Annotated[str, Field(min_length=1, max_length=64)]
    kind: Annotated[str, Field(min_length=1, max_length=64)]
    function: FunctionCode
    address: Annotated[int, Field(ge=0, le=0xFFFF)]
    type: DataType
    # Registers of a `string` point (two ASCII characters each); other types have a fixed width.
    length: Annotated[int | None, Field(ge=1, le=MAX_READ_REGISTERS)] = None
    byte_order: Order = Order.BIG
    word_order: Order = Order.BIG
    scale: float = 1.0
    unit: Annotated[str, Field(max_length=16)] = ""  # what a reading on the wire may carry
    # Digits of a counter's display: the value wraps to 0 at 10**digits (used for rollover).
    digits: Annotated[int | None, Field(ge=1, le=12)] = None

    @model_validator(mode="after")
    def _shape(self) -> Point:
        if self.type is DataType.STRING:
            if self.length is None:
                raise ValueError("a string point needs 'length' (registers)")
        elif self.length is not None:
            raise ValueError(f"'length' applies only to strings; {self.type} has a fixed width")
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        if self.address + self.words > 0x10000:
            raise ValueError("point runs past register 0xFFFF")
        return self

    @property
    def words(self) -> int:
        fixed = self.type.fixed_words
        if fixed is not None:
            return fixed
        assert self.length is not None
        return self.length

    @property
    def end(self) -> int:
        """One past the point's last register."""
        return self.address + self.words

    @property
    def numeric(self) -> bool:
        return self.type is not DataType.STRING


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    model: Annotated[str, Field(min_length=1)]
    points: Annotated[tuple[Point, ...], Field(min_length=1)]
    max_registers: Annotated[int, Field(ge=1, le=MAX_READ_REGISTERS)] = MAX_READ_REGISTERS
    max_gap: Annotated[int, Field(ge=0, le=MAX_READ_REGISTERS)] = DEFAULT_MAX_GAP

    @model_validator(mode="after")
    def _points(self) -> Profile:
        seen: set[str] = set()
        taken: dict[tuple[FunctionCode, int], str] = {}
        for point in self.points:
            for register in range(point.address, point.end):
                other = taken.setdefault((point.function, register), point.name)
                if other != point.name:
                    raise ValueError(
                        f"point {point.name!r}: register {register:#06x} is also in {other!r}"
                    )
            if point.name in seen:
                raise ValueError(f"point {point.name!r}: name used twice")
            seen.add(point.name)
            if point.words > self.max_registers:
                raise ValueError(
                    f"point {point.name!r}: {point.words} registers exceed max_registers"
                    f" {self.max_registers}"
                )
        return self

    def point(self, name: str) -> Point:
        for point in self.points:
            if point.name == name:
                return point
        raise KeyError(name)


def describe_error(exc: ValidationError, source: str, data: Any) -> str:
    """One line per problem naming the file, the point (by name when it has one) and the reason."""
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        if len(loc) >= 2 and loc[0] == "points" and isinstance(loc[1], int):
            name = _point_name(data, loc[1])
            rest = ".".join(str(p) for p in loc[2:])
            where = f"point {name!r}" + (f" {rest}" if rest else "")
        reason = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{source}: {where}: {reason}")
    return "; ".join(lines)


def _point_name(data: Any, index: int) -> str:
    try:
        return str(data["points"][index]["name"])
    except (KeyError, IndexError, TypeError):
        return f"#{index + 1}"


def parse_profile(data: Any, *, source: str) -> Profile:
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_error(exc, source, data)) from None
