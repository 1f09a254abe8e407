"""Applying an access list of CREDENTIALS face credentials (and as many rights) on the gateway:
verify the signature, parse, merge, write to the store sealed, index. Goal: ≤ 1 s and ≤ 30 MB
more RSS. The baseline, in the same process on the same bytes, is `json.loads` of the list:
the floor of reading it at all. RSS is sampled every 2 ms (peak) and read after (retained).

Run: `python -m bench access` (env: BENCH_ACCESS_CREDENTIALS, default 10000).
"""

from __future__ import annotations

import base64
import gc
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np
import psutil

from edge.access.clock import GatewayClock
from edge.access.service import AccessService
from edge.access.store import AccessStore
from edge.store.outbox import Outbox
from protocols.access.schema import AccessList, Credential, CredentialKind, Right, RightKind
from protocols.access.signing import encode_signed
from tests.access_lists import KEY, T0, door

CREDENTIALS = int(os.environ.get("BENCH_ACCESS_CREDENTIALS", "10000"))
GOAL_S, GOAL_MB = 1.0, 30.0


def build_payload(n: int) -> bytes:
    vectors = np.random.default_rng(1).standard_normal((n, 192)).astype("<f4")
    faces = [
        Credential(
            id=f"c-{i}", subject=f"s-{i}", kind=CredentialKind.FACE,
            embedding=base64.b64encode(vectors[i].tobytes()).decode(),
        )
        for i in range(n)
    ]  # fmt: skip
    rights = [
        Right(
            id=f"r-{i}", subject=f"s-{i}", kind=RightKind.LEASE, doors=["front", f"unit-{i % 200}"],
            valid_from=T0, valid_until=T0 + timedelta(days=365),
        )
        for i in range(n)
    ]  # fmt: skip
    doors = [door("front")] + [door(f"unit-{i}", codes=False) for i in range(200)]
    listed = AccessList(
        gateway_id="gw-1", version=1, issued_at=T0, doors=doors, credentials=faces, rights=rights
    )
    return encode_signed(listed, KEY)


T = TypeVar("T")


def measure(work: Callable[[], T]) -> tuple[float, float, float, T]:
    """Seconds, peak and retained RSS growth in MiB, and the result (kept alive)."""
    proc = psutil.Process()
    gc.collect()
    base = proc.memory_info().rss
    peak = base
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.002):
            peak = max(peak, proc.memory_info().rss)

    sampler = threading.Thread(target=sample, name="rss-sampler")
    sampler.start()
    started = time.perf_counter()
    try:
        result = work()
    finally:
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
    gc.collect()
    after = proc.memory_info().rss
    peak = max(peak, after)
    return elapsed, (peak - base) / 2**20, (after - base) / 2**20, result


def main() -> None:
    payload = build_payload(CREDENTIALS)
    body = payload.split(b"\n", 1)[1]
    print(f"list of {CREDENTIALS} face credentials and rights: {len(payload) / 2**20:.1f} MiB")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gw.db"
        outbox = Outbox(path)
        store = AccessStore(path, os.urandom(32))
        clock = GatewayClock(lambda: T0, monotonic=lambda: 1.0, boot=lambda: "b")
        service = AccessService("gw-1", KEY.public_key(), store, outbox, clock)
        try:
            base_s, base_peak, base_kept, parsed = measure(lambda: json.loads(body))
            del parsed
            apply_s, peak, kept, ok = measure(lambda: service.receive(payload))
            assert ok, "the list was refused"
            gallery_s, g_peak, g_kept, gallery = measure(lambda: service.gallery("front"))
        finally:
            outbox.close()
            store.close()
    print(
        f"baseline json.loads: {base_s:.3f} s, RSS +{base_peak:.1f} MiB peak, +{base_kept:.1f} kept"
    )
    print(
        f"apply: {apply_s:.3f} s ({apply_s / base_s:.1f}x baseline; goal <= {GOAL_S} s), "
        f"RSS +{peak:.1f} MiB peak, +{kept:.1f} kept (goal <= {GOAL_MB})"
    )
    print(f"door gallery of {len(gallery)} faces (built after): {gallery_s:.3f} s, "
          f"RSS +{g_peak:.1f} MiB peak, +{g_kept:.1f} kept")  # fmt: skip
