"""Load the face models for enrollment, after verifying them like the door does."""

from __future__ import annotations

import os
import time
from pathlib import Path

import onnxruntime as ort

from protocols.face.engine import FaceEngine, session_runner
from protocols.face.models import default_models_dir, verified_paths


def load_engine(directory: Path | None = None, *, threads: int = 1) -> FaceEngine:
    """Raises ModelsMissingError (saying how to get them) unless every file verifies.
    One thread: enrollment is rare and must not starve the API's other requests."""
    where = directory or default_models_dir(os.environ, Path.home())
    files = verified_paths(where, lambda path: path.read_bytes() if path.is_file() else None)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    detector, recognizer = (
        ort.InferenceSession(str(files[role]), options, ["CPUExecutionProvider"])
        for role in ("detector", "recognizer")
    )
    return FaceEngine(session_runner(detector), session_runner(recognizer), clock=time.perf_counter)
