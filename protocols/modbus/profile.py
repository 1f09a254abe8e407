"""Meter profiles: a declarative table of points, validated at load."""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocols.errors import ConfigError


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

    @property
    def words(self) -> int:
        return {"u16": 1, "i16": 1, "u32": 2, "i32": 2, "f32": 2, "f64": 4}[self.value]


class Order(StrEnum):
    BIG = "big"
    LITTLE = "little"


class Point(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=64)]
    kind: str
    function: FunctionCode
    address: Annotated[int, Field(ge=0, le=0xFFFF)]
    type: DataType
    byte_order: Order = Order.BIG
    word_order: Order = Order.BIG
    scale: float = 1.0
    unit: str = ""
    digits: Annotated[int | None, Field(ge=1, le=12)] = None


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    points: Annotated[tuple[Point, ...], Field(min_length=1)]


def parse_profile(data: Any, *, source: str) -> Profile:
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{source}: {where}: {err['msg']}") from None
