"""N-of-M confirmation: one frame never opens a door; N agreeing frames out of the last M do.

Time is passed in with each frame. After a decision the confirmer waits for the face to leave
(a run of empty frames) or for `rearm_s`, so one approach yields one decision.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from protocols.face.gallery import Identity, Match

_STRANGER = "\x00stranger"


class Verdict(StrEnum):
    GRANT = "grant"
    DENY = "deny"


class Reason(StrEnum):
    MATCH = "match"
    UNKNOWN_FACE = "unknown_face"
    ACCESS_NOT_VALID = "access_not_valid"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: Reason
    person_id: str | None
    score: float  # best cosine among the agreeing frames
    frames: int  # agreeing frames
    first_seen: datetime  # first frame of this approach with a usable face
    decided: datetime

    @property
    def latency_s(self) -> float:
        return (self.decided - self.first_seen).total_seconds()


class Confirmer:
    def __init__(
        self,
        *,
        threshold: float,
        n: int = 3,
        m: int = 5,
        rearm_empty_frames: int = 5,
        rearm_s: float = 10.0,
    ) -> None:
        if not 1 <= n <= m:
            raise ValueError(f"need 1 <= n <= m, got n={n}, m={m}")
        self.threshold = threshold
        self.n, self.m = n, m
        self._rearm_empty = rearm_empty_frames
        self._rearm_s = rearm_s
        self._window: deque[tuple[str | None, float, Identity | None]] = deque(maxlen=m)
        self._empty_run = 0
        self._first_seen: datetime | None = None
        self._decided_at: datetime | None = None

    def observe(self, match: Match | None, now: datetime) -> Decision | None:
        """Feed one frame: the best usable face's match, or None for a frame without one."""
        if match is None:
            self._empty_run += 1
            self._window.append((None, 0.0, None))
            if self._empty_run >= self._rearm_empty:
                self._reset()
            return None
        self._empty_run = 0
        if self._decided_at is not None:
            if (now - self._decided_at).total_seconds() < self._rearm_s:
                return None
            self._reset()
        if self._first_seen is None:
            self._first_seen = now
        known = match.identity is not None and match.score >= self.threshold
        label = match.identity.person_id if known and match.identity else _STRANGER
        self._window.append((label, match.score, match.identity))
        counts = Counter(lbl for lbl, _, _ in self._window if lbl is not None)
        if not counts:
            return None
        label, hits = counts.most_common(1)[0]
        if hits < self.n:
            return None
        agreeing = [(score, who) for lbl, score, who in self._window if lbl == label]
        score, who = max(agreeing, key=lambda pair: pair[0])
        decision = self._decide(label, who, score, hits, now)
        self._decided_at = now
        return decision

    def _decide(
        self, label: str, who: Identity | None, score: float, hits: int, now: datetime
    ) -> Decision:
        first = self._first_seen or now
        if label == _STRANGER or who is None:
            return Decision(Verdict.DENY, Reason.UNKNOWN_FACE, None, score, hits, first, now)
        if not who.valid_at(now):
            return Decision(
                Verdict.DENY, Reason.ACCESS_NOT_VALID, who.person_id, score, hits, first, now
            )
        return Decision(Verdict.GRANT, Reason.MATCH, who.person_id, score, hits, first, now)

    def _reset(self) -> None:
        self._window.clear()
        self._first_seen = None
        self._decided_at = None
        self._empty_run = 0
