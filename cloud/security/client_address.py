"""The client's address, as the login throttle and the audit log see it: one rule, here.

The TCP peer is the client, unless the peer is a reverse proxy named in ANJU_TRUSTED_PROXIES
(addresses or networks; empty by default, so no header is believed). Behind named proxies,
X-Forwarded-For is read from the right, where each proxy appended the address it saw, skipping
named proxies: the first address that is not one is the client. What a client wrote into the
header itself sits to the left of that and is never read. An entry that is not an address
stops the walk at the last proxy. uvicorn's own proxy-header handling (which believes any
header from 127.0.0.1) is off in `anju cloud serve`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> tuple[Network, ...]:
    """`10.0.0.5, 192.168.0.0/24, ::1`: ValueError names the entry that is not one."""
    networks = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not an IP address or network") from None
    return tuple(networks)


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[Network, ...] = ()

    def trusts(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.networks)

    def client(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client's address, from the TCP peer and the X-Forwarded-For header lines."""
        if not self.trusts(peer):
            return peer
        hops = [h.strip() for line in forwarded_for for h in line.split(",")]
        client = peer
        for hop in reversed(hops):
            if not self.trusts(client):
                break
            try:
                client = str(ipaddress.ip_address(hop))
            except ValueError:
                break
        return client
