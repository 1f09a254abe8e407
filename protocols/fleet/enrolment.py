"""The enrolment exchange: a new gateway trades a one-time token for its identity.

The installer runs `anju edge enroll --token T --cloud URL` on the box; it posts an
`EnrolRequest` to the cloud and receives an `EnrolGrant`: the gateway's id, its MQTT login, the
broker's CA (for a private one), the key that signs commands, and its first configuration. The
token is the only secret the installer carries, and it is worth nothing once used or expired.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from protocols.mqtt.topics import GATEWAY_ID
from protocols.text import CLEAN

ENROL_PATH = "/api/v1/gateways/enrol"
TOKEN_BYTES = 32  # 256 random bits: guessing is hopeless, so a fast hash stores it safely
# URL-safe base64 of TOKEN_BYTES: 43 characters; a little room for a prefix.
Token = Annotated[str, Field(min_length=20, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]
Pem = Annotated[str, Field(max_length=64 * 1024, pattern=CLEAN)]
MAX_CONFIG_BYTES = 256 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnrolRequest(_Strict):
    token: Token


class MqttLogin(_Strict):
    url: Annotated[str, Field(max_length=512, pattern=CLEAN)]
    username: Annotated[str, Field(pattern=GATEWAY_ID)]
    password: Annotated[str, Field(min_length=16, max_length=200, pattern=CLEAN)]
    protocol: Literal["3.1.1", "5"] = "5"


class EnrolGrant(_Strict):
    gateway_id: Annotated[str, Field(pattern=GATEWAY_ID)]
    mqtt: MqttLogin
    ca_pem: Pem | None = None  # the broker's private CA; None: the system's trust store
    command_public_key: Annotated[str, Field(max_length=200, pattern=CLEAN)]
    # The first configuration: the gateway's config file minus what the box decides itself
    # (where its store and key files live). Validated by the gateway before it is written.
    config: dict[str, Any] = {}
