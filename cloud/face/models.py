"""Load the face models for enrollment, after verifying them like the door does."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import onnxruntime as ort

from protocols.face.engine import FaceEngine, session_runner
from protocols.face.models import RECORD_NAME, default_models_dir, parse_record, verify


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def load_engine(directory: Path | None = None, *, threads: int = 1) -> FaceEngine:
    """Raises ModelsMissingError (saying how to get them) unless every file verifies.
    One thread: enrollment is rare and must not starve the API's other requests."""
    where = directory or default_models_dir(os.environ, Path.home())
    record = where / RECORD_NAME
    text = record.read_text(encoding="utf-8") if record.is_file() else None
    files = verify(parse_record(text, str(where)), lambda name: _sha256(where / name), str(where))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    detector, recognizer = (
        ort.InferenceSession(str(where / files[role]), options, ["CPUExecutionProvider"])
        for role in ("detector", "recognizer")
    )
    return FaceEngine(session_runner(detector), session_runner(recognizer), clock=time.perf_counter)
