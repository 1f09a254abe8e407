"""The link over TLS (mqtts://): a private Mosquitto with a certificate from a CA made here.

A gateway and the cloud that trust that CA deliver every reading; a gateway that does not
(the system's trust store) is refused by its own certificate check and sends nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge.uplink.client import Uplink
from tests.e2e.link_harness import Link, assert_same, wait_until
from tests.private_mosquitto import private_mosquitto

pytestmark = pytest.mark.timeout(60)


@dataclass
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    key_cert_sign=True,
    crl_sign=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    encipher_only=False,
    decipher_only=False,
)


def make_pki(folder: Path) -> Pki:
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("anju test CA"))
        .issuer_name(_name("anju test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    pki.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


@pytest.fixture
async def tls_broker(tmp_path: Path) -> AsyncIterator[tuple[str, Pki]]:
    pki = make_pki(tmp_path)
    async with private_mosquitto(tmp_path, tls=(pki.cert_file, pki.key_file)) as broker:
        yield broker.url, pki


async def test_readings_cross_a_tls_broker(
    tls_broker: tuple[str, Pki], database_url: str, tmp_path: Path
) -> None:
    url, pki = tls_broker
    assert url.startswith("mqtts://")
    async with Link(url, database_url, tmp_path, ca_file=pki.ca_file) as link:
        link.open_outbox()
        produced = link.produce(0, 600)
        async with link.ingest(), link.uplink():
            await wait_until(link.drained, 30, "the outbox to drain over TLS")
        assert_same(produced, link.stored())


async def test_a_gateway_that_does_not_trust_the_broker_sends_nothing(
    tls_broker: tuple[str, Pki],
    database_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, pki = tls_broker
    async with Link(url, database_url, tmp_path, ca_file=pki.ca_file) as link:
        outbox = link.open_outbox()
        # the gateway alone lacks the CA: it checks the broker against the system's trust store
        mqtt = link.config.mqtt.model_copy(update={"ca_file": None})
        config = link.config.model_copy(update={"mqtt": mqtt})
        link.produce(0, 10)
        retried = asyncio.Event()

        async def backoff(_delay: float) -> None:
            retried.set()
            await asyncio.Event().wait()  # hold the uplink here: one attempt is the test

        uplink = Uplink(config, outbox, now=lambda: datetime.now(UTC), sleep=backoff)
        with caplog.at_level(logging.WARNING, logger="edge.uplink.client"):
            task = asyncio.create_task(uplink.run(), name="untrusting-uplink")
            try:
                await asyncio.wait_for(retried.wait(), 20)  # the failed TLS connect
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        assert not uplink.connected.is_set()
        assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
        assert outbox.stats().pending == 10
        assert link.stored() == []
