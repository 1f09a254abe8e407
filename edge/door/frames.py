"""Frame sources behind one seam: an OpenCV capture (RTSP, USB, video file) that reopens when the
stream drops, and a folder of images. `read()` never blocks on a reconnect: it returns None
until the next attempt is due, so the caller keeps its own pace."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from protocols.face.contract import ImageArray
from runtime.backoff import Backoff

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})


class FrameSource(Protocol):
    @property
    def ended(self) -> bool: ...

    def read(self) -> ImageArray | None: ...

    def close(self) -> None: ...


class Capture(Protocol):
    """What we use of cv2.VideoCapture."""

    def isOpened(self) -> bool: ...  # noqa: N802 - OpenCV's name
    def read(self) -> tuple[bool, Any]: ...
    def release(self) -> None: ...


def _open(uri: str) -> Capture:
    if uri.startswith("usb:"):
        return cv2.VideoCapture(int(uri.removeprefix("usb:")))
    return cv2.VideoCapture(uri)


class CaptureSource:
    """A camera stream. `finite=True` (a video file played once) ends at end of stream;
    otherwise the end is a drop: release, back off, reopen."""

    def __init__(
        self,
        uri: str,
        *,
        name: str = "door",
        finite: bool = False,
        open_capture: Callable[[str], Capture] = _open,
        clock: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
    ) -> None:
        self._uri = uri
        self._name = name
        self._finite = finite
        self._open_capture = open_capture
        self._clock = clock
        self._backoff = backoff or Backoff(base=0.5, cap=10.0)
        self._capture: Capture | None = None
        self._retry_at = 0.0
        self._ended = False
        self._failing = False
        self.opens = 0

    @property
    def ended(self) -> bool:
        return self._ended

    def read(self) -> ImageArray | None:
        if self._ended:
            return None
        if self._capture is None:
            if self._clock() < self._retry_at:
                return None
            self._capture = self._open_capture(self._uri)
            self.opens += 1
            if not self._capture.isOpened():
                self._drop("cannot open")
                return None
        ok, frame = self._capture.read()
        if not ok or frame is None:
            self._drop("stream ended")
            return None
        if self._failing:
            log.info("[%s] camera recovered", self._name)
            self._failing = False
        self._backoff.reset()
        return np.asarray(frame, dtype=np.uint8)

    def _drop(self, why: str) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        if self._finite and self.opens:
            self._ended = True
            return
        delay = self._backoff.next_delay()
        if not self._failing:
            log.warning("[%s] camera %s (%s); reconnecting", self._name, why, self._uri)
            self._failing = True
        self._retry_at = self._clock() + delay

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self._ended = True


class FolderSource:
    """Every image in a folder, in name order, once."""

    def __init__(self, folder: Path) -> None:
        self._files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        self._next = 0

    @property
    def ended(self) -> bool:
        return self._next >= len(self._files)

    def read(self) -> ImageArray | None:
        while not self.ended:
            path = self._files[self._next]
            self._next += 1
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is not None:
                return np.asarray(frame, dtype=np.uint8)
            log.warning("skipping unreadable image %s", path)
        return None

    def close(self) -> None:
        self._next = len(self._files)


def open_source(spec: str, *, name: str = "door") -> FrameSource:
    """`rtsp://…`, `usb:N`, a video file (played once) or a folder of images."""
    path = Path(spec)
    if "://" not in spec and not spec.startswith("usb:"):
        if path.is_dir():
            return FolderSource(path)
        return CaptureSource(spec, name=name, finite=True)
    return CaptureSource(spec, name=name)
