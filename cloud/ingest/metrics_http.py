"""`GET /metrics` for an ingest worker running on its own (`anju cloud ingest --metrics-port`).

`anju cloud serve` answers /metrics from its FastAPI app; a standalone worker has no HTTP stack,
so it runs prometheus_client's own server (a thread beside the event loop), limited to the one
path: prometheus_client answers every path with the metrics, a scraper asks for /metrics only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from wsgiref.simple_server import WSGIServer
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import CollectorRegistry, make_wsgi_app, start_http_server

log = logging.getLogger(__name__)


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> WSGIServer:
    """Listen on host:port in a daemon thread; `GET /metrics` answers the registry's metrics
    (405 for another method, prometheus_client's answer), any other path 404. Stop it with
    `shutdown()` and `server_close()`."""
    server, _ = start_http_server(port, host, registry=registry)
    server.set_app(_metrics_only(make_wsgi_app(registry)))
    log.info("metrics at http://%s:%d/metrics", host, port)
    return server


def _metrics_only(app: WSGIApplication) -> WSGIApplication:
    def only(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"not found\n"]
        return app(environ, start_response)

    return only
