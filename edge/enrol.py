"""`anju edge enroll`: trade the installer's one-time token for this gateway's identity.

The cloud answers with the gateway's id, its MQTT login, the broker's CA, the command key and a
first configuration. The configuration is validated as the gateway will load it before anything
is written; files are written owner-only (folder 0700, files 0600) and replaced atomically, so
an interrupted enrolment leaves either the old files or the new ones.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError

from edge.config import GatewayConfig
from edge.yamlfile import describe
from protocols.errors import AnjuError
from protocols.fleet.enrolment import ENROL_PATH, EnrolGrant, EnrolRequest
from runtime.private_files import FILE_MODE, private_folder

HTTP_TIMEOUT_S = 30.0  # a cloud across a slow mobile link, but not forever
MAX_ANSWER_BYTES = 512 * 1024


class EnrolError(AnjuError):
    """The enrolment did not happen; the message says why (as the cloud put it, if it did)."""


def request_grant(cloud_url: str, token: str, *, timeout_s: float = HTTP_TIMEOUT_S) -> EnrolGrant:
    parts = urlsplit(cloud_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise EnrolError(f"--cloud {cloud_url!r}: expected https://HOST[:PORT]")
    try:
        body = EnrolRequest(token=token).model_dump_json().encode()
    except ValidationError:
        raise EnrolError("the token is malformed: copy it again from the cloud") from None
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        cloud_url.rstrip("/") + ENROL_PATH,
        data=body,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310
            raw = answer.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise EnrolError(f"the cloud refused the enrolment: {_problem(exc)}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise EnrolError(f"cannot reach the cloud at {cloud_url}: {exc}") from None
    if len(raw) > MAX_ANSWER_BYTES:
        raise EnrolError("the cloud's answer is too large")
    try:
        return EnrolGrant.model_validate_json(raw)
    except ValidationError as exc:
        raise EnrolError(
            f"the cloud's answer is not an enrolment: {describe(exc, 'answer')}"
        ) from None


def _problem(exc: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(exc.read(64 * 1024)).get("detail")
    except (ValueError, AttributeError, OSError):
        detail = None
    return str(detail)[:500] if detail else f"HTTP {exc.code}"


def gateway_config(grant: EnrolGrant, folder: Path, store: Path | None) -> dict[str, Any]:
    """The config file's content: the cloud's first configuration with this box's paths."""
    config: dict[str, Any] = json.loads(json.dumps(grant.config))
    if config.get("gateway_id") != grant.gateway_id:
        raise EnrolError("the cloud's configuration names another gateway")
    mqtt = config.setdefault("mqtt", {})
    if grant.ca_pem is not None:
        mqtt["ca_file"] = str(folder / "ca.pem")
    if store is not None:
        config.setdefault("store", {})["path"] = str(store)
    try:
        GatewayConfig.model_validate(config)
    except ValidationError as exc:
        raise EnrolError(
            f"the cloud's configuration is invalid: {describe(exc, 'config')}"
        ) from None
    return config


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, mode 0600 from the first byte, atomically."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def install(grant: EnrolGrant, config_path: Path, *, store: Path | None = None) -> GatewayConfig:
    """Write the config file (and the broker's CA beside it); returns the config as loaded."""
    folder = config_path.parent.absolute()
    config = gateway_config(grant, folder, store)
    private_folder(folder)
    if grant.ca_pem is not None:
        write_private(folder / "ca.pem", grant.ca_pem)
    header = f"# Written by `anju edge enroll` for gateway {grant.gateway_id}.\n"
    write_private(config_path, header + yaml.safe_dump(config, sort_keys=False))
    return GatewayConfig.model_validate(config)


def enrol(
    cloud_url: str, token: str, config_path: Path, *, store: Path | None = None, force: bool = False
) -> GatewayConfig:
    """Refuses to overwrite an existing config file unless `force`. What can be checked on
    the box (the file, the folder) is checked before the token is spent."""
    if config_path.exists() and not force:
        raise EnrolError(f"{config_path} exists; this box is enrolled (--force replaces it)")
    try:
        private_folder(config_path.parent.absolute())
    except OSError as exc:
        raise EnrolError(f"cannot create {config_path.parent}: {exc.strerror}") from None
    if not os.access(config_path.parent, os.W_OK):
        raise EnrolError(f"cannot write in {config_path.parent} (run as the gateway's user)")
    grant = request_grant(cloud_url, token)
    return install(grant, config_path, store=store)
