"""One frame at a time: analyse, match the main face, confirm over N of M frames, and turn a
decision into the event the cloud receives."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from protocols.face.confirm import Confirmer, Decision
from protocols.face.contract import ImageArray
from protocols.face.engine import FaceEngine
from protocols.face.gallery import Gallery, Match

EVENT_KIND = "event"
EVENT_TYPE = "door.decision"


@dataclass(frozen=True, slots=True)
class FrameResult:
    faces: int
    match: Match | None  # of the main face, when it passed the gates
    reject: str | None  # why the main face was not used
    timings_ms: dict[str, float]


class DoorPipeline:
    def __init__(
        self,
        door_id: str,
        engine: FaceEngine,
        gallery: Gallery,
        confirmer: Confirmer,
        *,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.door_id = door_id
        self.engine = engine
        self.gallery = gallery
        self.confirmer = confirmer
        self._clock = clock
        self.last_timings: dict[str, float] = {}

    def process(self, frame: ImageArray, now: datetime) -> tuple[Decision | None, FrameResult]:
        start = self._clock()
        analysis = self.engine.analyze(frame)
        main = analysis.main
        match: Match | None = None
        t_match = self._clock()
        if main is not None and main.embedding is not None:
            match = self.gallery.match(main.embedding)
        timings = dict(analysis.timings_ms)
        timings["match"] = (self._clock() - t_match) * 1000
        timings["total"] = (self._clock() - start) * 1000
        decision = self.confirmer.observe(match, now)
        reject = main.reject.value if main is not None and main.reject is not None else None
        result = FrameResult(len(analysis.faces), match, reject, timings)
        self.last_timings = timings
        return decision, result

    def event(self, decision: Decision, timings_ms: dict[str, float]) -> dict[str, Any]:
        return {
            "type": EVENT_TYPE,
            "source": self.door_id,  # the cloud lists a door's events by its code
            "door": self.door_id,
            "verdict": decision.verdict.value,
            "reason": decision.reason.value,
            "person_id": decision.person_id,
            "score": round(decision.score, 4),
            "threshold": self.confirmer.threshold,
            "frames": decision.frames,
            "confirm": f"{self.confirmer.n}/{self.confirmer.m}",
            "latency_ms": round(decision.latency_s * 1000, 1),
            "timings_ms": {k: round(v, 2) for k, v in timings_ms.items()},
            "ts": decision.decided.isoformat(),
        }
