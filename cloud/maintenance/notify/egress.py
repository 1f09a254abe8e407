"""Where the server may send a webhook: the guard against server-side request forgery.

A subscriber names the URL and the server posts to it, so a URL could aim the server at its own
loopback services, the private network or a cloud's metadata address (169.254.169.254). The
address is checked where the connection is made, after DNS resolution, and the connection goes
to the address that was checked — a name that resolves differently a moment later (DNS
rebinding), a decimal or IPv4-mapped spelling of a private address, or a redirect to one gains
nothing. Redirects are followed a bounded number of times, each hop checked again.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import certifi
import httpcore
import httpx

from cloud.security.client_address import Network

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
MAX_REDIRECTS = 2


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """`http`: plain http URLs; `any_address`: private, loopback and link-local addresses too
    (both for development and tests only); `networks`: private networks allowed all the same
    (e.g. a relay on the operator's network)."""

    http: bool = False
    any_address: bool = False
    networks: tuple[Network, ...] = ()

    def allows(self, ip: IPAddress) -> bool:
        if self.any_address or any(ip in n for n in self.networks):
            return True
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip.is_global and not ip.is_multicast


STRICT = EgressPolicy()


def refusal(ip: IPAddress) -> str:
    return f"{ip} is not a public address"


def literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class GuardedBackend(httpcore.SyncBackend):
    """Resolves the host itself, refuses it when any of its addresses is not allowed, and
    connects to the checked address (TLS still checks the certificate against the name)."""

    def __init__(self, policy: EgressPolicy, resolve: Resolver = system_resolver) -> None:
        self._policy = policy
        self._resolve = resolve

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            found = self._resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        for ip in addresses:
            if not self._policy.allows(ip):
                raise httpcore.ConnectError(refusal(ip))
        return super().connect_tcp(str(addresses[0]), port, timeout, local_address, socket_options)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over the guarded backend; no proxy from the environment."""

    def __init__(self, policy: EgressPolicy, resolve: Resolver = system_resolver) -> None:
        super().__init__(retries=0)
        context = ssl.create_default_context(cafile=certifi.where())
        self._pool = httpcore.ConnectionPool(
            ssl_context=context, network_backend=GuardedBackend(policy, resolve)
        )


def guarded_client(policy: EgressPolicy, resolve: Resolver = system_resolver) -> httpx.Client:
    """A client for webhooks: guarded connections, no redirects of its own, no proxies."""
    return httpx.Client(
        transport=GuardedTransport(policy, resolve), follow_redirects=False, trust_env=False
    )
