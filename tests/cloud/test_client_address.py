"""Which address is the client's: the TCP peer, or what named proxies forwarded."""

from __future__ import annotations

import pytest

from cloud.config import load_settings
from cloud.security.client_address import TrustedProxies, parse_networks
from protocols.errors import ConfigError

NGINX = TrustedProxies(parse_networks("127.0.0.1, 10.0.0.0/8, ::1"))


@pytest.mark.parametrize(
    ("proxies", "peer", "header", "client"),
    [
        (TrustedProxies(), "127.0.0.1", ["203.0.113.9"], "127.0.0.1"),  # none named: peer
        (NGINX, "198.51.100.7", ["203.0.113.9"], "198.51.100.7"),  # not from a proxy
        (NGINX, "127.0.0.1", [], "127.0.0.1"),  # a proxy's own request
        (NGINX, "127.0.0.1", ["203.0.113.9"], "203.0.113.9"),
        (NGINX, "127.0.0.1", ["6.6.6.6, 203.0.113.9"], "203.0.113.9"),  # forged left part
        (NGINX, "127.0.0.1", ["6.6.6.6", "203.0.113.9, 10.1.2.3"], "203.0.113.9"),  # two proxies
        (NGINX, "::1", ["2001:db8::1"], "2001:db8::1"),
        (NGINX, "127.0.0.1", ["203.0.113.9, unknown"], "127.0.0.1"),  # garbage: stop at proxy
        (NGINX, "127.0.0.1", ["10.1.2.3"], "10.1.2.3"),  # only proxies: the farthest one
    ],
)
def test_client_address(proxies: TrustedProxies, peer: str, header: list[str], client: str) -> None:
    assert proxies.client(peer, header) == client


def test_a_bad_proxy_entry_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"ANJU_TRUSTED_PROXIES: 'nginx' is not an IP"):
        load_settings(env="development", trusted_proxies="127.0.0.1, nginx")
    assert load_settings(env="development").proxies == TrustedProxies()
