"""The gateway's TLS context for an mqtts:// broker.

paho wraps the socket and runs the handshake itself; when the handshake fails (a broker whose
certificate we do not trust) it drops the SSL socket without closing it, and each retry left
one to the garbage collector. Our sockets close themselves when their handshake fails.
"""

from __future__ import annotations

import ssl
from pathlib import Path


class _ClosingSSLSocket(ssl.SSLSocket):
    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verifies the broker against `ca_file`, or the system's trust store when it is None."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.sslsocket_class = _ClosingSSLSocket
    return context
