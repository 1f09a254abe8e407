"""Load the face models only after their SHA-256 matches what `anju models fetch` recorded."""

from __future__ import annotations

import os
import time
from pathlib import Path

import onnxruntime as ort

from protocols.face.engine import FaceEngine, session_runner
from protocols.face.models import default_models_dir, verified_paths


def models_dir(configured: Path | None = None) -> Path:
    return configured or default_models_dir(os.environ, Path.home())


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def session_options(threads: int) -> ort.SessionOptions:
    """One frame at a time through two small models. onnxruntime's workers spin-wait between
    runs by default: on 2 cores that quadrupled the CPU per frame (the detector's idle workers
    spin while the recognizer runs) and doubled the latency when anything else ran. Off."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # warnings about shape hints of the dynamic detector
    return options


def load_engine(
    directory: Path | None = None, *, threads: int = 2, detect_side: int = 320
) -> FaceEngine:
    """Raises ModelsMissingError (with how to get them) unless every file verifies."""
    files = verified_paths(models_dir(directory), _read)
    options = session_options(threads)
    sessions = {
        role: ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        for role, path in files.items()
    }
    return FaceEngine(
        session_runner(sessions["detector"]),
        session_runner(sessions["recognizer"]),
        detect_side=detect_side,
        clock=time.perf_counter,
    )
