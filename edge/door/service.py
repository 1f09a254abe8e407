"""The door as a gateway service: frames and inference run in worker threads (onnxruntime
releases the GIL), decisions go to the lock and, durably, to the outbox."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from edge.door.config import DoorConfig
from edge.door.frames import FrameSource, open_source
from edge.door.lock import Lock, UnlockRequest
from edge.door.models import load_engine
from edge.door.pipeline import EVENT_KIND, DoorPipeline
from edge.door.snapshots import SnapshotStore, open_store
from protocols.access.decide import Face
from protocols.errors import ConfigError
from protocols.face.confirm import Confirmer, Decision, Verdict
from protocols.face.contract import FaceError, ImageArray
from protocols.face.gallery import Gallery, GalleryExport
from protocols.lock.errors import LockError

if TYPE_CHECKING:
    from edge.access.service import AccessService

log = logging.getLogger(__name__)

# A door deciding by the list looks again this often for its first list; until one is applied
# every face would be refused `no_list`, so the camera is not read (a folder or a video file
# is not played to nobody).
FIRST_LIST_WAIT_S = 0.5


class EventSink(Protocol):
    def append(self, kind: str, payloads: list[dict[str, object]]) -> list[int]: ...


class DoorService:
    def __init__(
        self,
        config: DoorConfig,
        pipeline: DoorPipeline,
        source: FrameSource,
        lock: Lock,
        events: EventSink,
        *,
        now: Callable[[], datetime],
        on_stored: Callable[[], None] = lambda: None,
        snapshots: SnapshotStore | None = None,
        gallery_file: GalleryFile | None = None,
        access: AccessService | None = None,
    ) -> None:
        self._config = config
        self._pipeline = pipeline
        self._source = source
        self._lock = lock
        self._events = events
        self._now = now
        self._on_stored = on_stored
        self._snapshots = snapshots
        self._gallery_file = gallery_file
        self._access = access  # faces and rights from the access list, when set
        self._access_version: int | None = None
        self.frames = 0
        self.decisions: list[Decision] = []

    async def run(self) -> None:
        """Until a finite source ends (or cancellation)."""
        idle_s = 1.0 / self._config.max_fps
        door = self._config.id
        log.info("[%s] door running, %d enrolled rows", door, len(self._pipeline.gallery))
        waiting_logged = False
        try:
            while not self._source.ended:
                if self._gallery_file is not None and self._gallery_file.due():
                    fresh = await asyncio.to_thread(self._gallery_file.reload)
                    if fresh is not None:
                        self._pipeline.gallery = fresh  # between frames: no run is using it
                        log.info("[%s] gallery reloaded, %d enrolled rows", door, len(fresh))
                if self._access is not None and self._access.version is None:
                    if not waiting_logged:
                        log.info("[%s] waiting for the first access list", door)
                        waiting_logged = True
                    await asyncio.sleep(FIRST_LIST_WAIT_S)
                    continue
                if self._access is not None and self._access.version != self._access_version:
                    self._access_version = self._access.version
                    fresh = await asyncio.to_thread(self._access.gallery, door)
                    self._pipeline.gallery = fresh
                    log.info(
                        "[%s] access list %s: %d faces", door, self._access_version, len(fresh)
                    )
                frame = await asyncio.to_thread(self._source.read)
                if frame is None:
                    await asyncio.sleep(idle_s)
                    continue
                self.frames += 1
                decision, result = await asyncio.to_thread(
                    self._pipeline.process, frame, self._now()
                )
                if decision is not None:
                    await self._act(decision, result.timings_ms, frame)
        finally:
            self._source.close()

    @property
    def door_id(self) -> str:
        return self._config.id

    async def _act(
        self, decision: Decision, timings_ms: dict[str, float], frame: ImageArray
    ) -> None:
        door = self._config.id
        self.decisions.append(decision)
        event = self._pipeline.event(decision, timings_ms)
        who = decision.person_id if decision.verdict is Verdict.GRANT else None
        if self._access is not None:
            # The face names a credential; the access list decides (rights, windows, uses).
            access = await asyncio.to_thread(self._access.decide, door, Face(who))
            who = access.subject if access.granted else None
            event |= {k: v for k, v in access.event().items() if v is not None or k != "ts"}
            event |= {"verdict": "grant" if access.granted else "deny", "person_id": who}
        lock_error = None
        if who is not None:
            try:
                await self._lock.unlock(
                    UnlockRequest(door, who, self._config.unlock_hold_s, decision.decided)
                )
            except LockError as exc:  # the decision is still recorded; the door keeps going
                lock_error = str(exc)
                log.warning("[%s] lock did not open: %s", door, exc)
        if lock_error is not None:
            event["lock_error"] = lock_error
        if self._snapshots is not None:
            event["snapshot"] = await self._keep_snapshot(frame, decision.decided, event)
        await asyncio.to_thread(self._events.append, EVENT_KIND, [event])
        self._on_stored()
        log.info(
            "[%s] %s (%s) person=%s score=%.3f",
            door,
            decision.verdict.value,
            decision.reason.value,
            decision.person_id,
            decision.score,
        )

    async def _keep_snapshot(
        self, frame: ImageArray, decided: datetime, event: dict[str, Any]
    ) -> str | None:
        """The event still goes out if the snapshot cannot be written (disk full, ...)."""
        assert self._snapshots is not None
        meta = {k: event[k] for k in ("door", "verdict", "reason", "person_id", "score", "ts")}
        try:
            return await asyncio.to_thread(self._snapshots.keep, frame, decided, meta)
        except (OSError, FaceError) as exc:
            log.warning("[%s] snapshot not kept: %s", self._config.id, exc)
            return None


class GalleryFile:
    """The door's gallery export on disk, reloaded when it changes (a new export copied in by
    the access-list sync or by hand), looked at no more often than every `every_s`. A file
    that does not load leaves the door on the gallery it has."""

    def __init__(
        self, path: Path, *, every_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = path
        self._every_s = every_s
        self._clock = clock
        self._stamp = self._stat()
        self._next = clock() + every_s
        self._failing = False

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def due(self) -> bool:
        return self._clock() >= self._next

    def reload(self) -> Gallery | None:
        """The new gallery if the file changed and loads; None otherwise."""
        self._next = self._clock() + self._every_s
        stamp = self._stat()
        if stamp is None or stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            gallery = load_gallery(self.path)
        except (ConfigError, FaceError, ValueError) as exc:
            if not self._failing:
                log.warning(
                    "gallery %s changed but does not load; keeping the old: %s", self.path, exc
                )
            self._failing = True
            return None
        self._failing = False
        return gallery


def load_gallery(path: Path) -> Gallery:
    try:
        return GalleryExport.model_validate_json(path.read_bytes()).gallery()
    except OSError as exc:
        raise ConfigError(f"door gallery {path}: {exc.strerror}") from None
    except ValidationError as exc:
        raise ConfigError(f"door gallery {path} is not a gallery export: {exc}") from None


def create_door(
    config: DoorConfig,
    lock: Lock,
    events: EventSink,
    *,
    now: Callable[[], datetime],
    source: FrameSource | None = None,
    on_stored: Callable[[], None] = lambda: None,
    access: AccessService | None = None,
) -> DoorService:
    """Refuses (ModelsMissingError) unless the models verify; nothing is downloaded here.
    A door without a gallery file takes its faces from `access` (the gateway's list)."""
    if config.gallery is None and access is None:
        raise ConfigError(f"door {config.id}: no gallery file and no access list to decide by")
    engine = load_engine(config.models_dir, threads=config.threads, detect_side=config.detect_side)
    confirmer = Confirmer(threshold=config.threshold, n=config.confirm_n, m=config.confirm_m)
    gallery = Gallery.empty() if config.gallery is None else load_gallery(config.gallery)
    pipeline = DoorPipeline(config.id, engine, gallery, confirmer)
    return DoorService(
        config,
        pipeline,
        source or open_source(config.source, name=config.id),
        lock,
        events,
        now=now,
        on_stored=on_stored,
        snapshots=open_store(config.snapshots, config.id, now=now),
        gallery_file=None
        if config.gallery is None
        else GalleryFile(config.gallery, every_s=config.gallery_check_s),
        access=None if config.gallery is not None else access,
    )
