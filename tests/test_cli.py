"""The `anju` command: help everywhere, one clear line for user errors, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from anju import __version__
from anju.cli import cli
from anju.main import gateway_arguments

REQUIRED = [
    ("broker",),
    ("cloud", "serve"),
    ("cloud", "migrate"),
    ("edge", "run"),
    ("sim", "meters"),
    ("demo",),
]


def walk(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = (*prefix, name)
        yield path
        if isinstance(command, click.Group):
            yield from walk(command, path)


def test_required_commands_exist() -> None:
    assert set(REQUIRED) <= set(walk(cli))


def test_every_command_has_help() -> None:
    runner = CliRunner()
    paths = list(walk(cli))
    assert len(paths) >= len(REQUIRED)
    for path in paths:
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage: " in result.output, path
        assert len(result.output.splitlines()) > 2, path


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def run_anju(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anju", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_missing_gateway_config_is_one_line(tmp_path: Path) -> None:
    result = run_anju("edge", "run", "--config", str(tmp_path / "nope.yaml"))
    assert_one_line_error(result, "nope.yaml", "cannot read")


def test_the_gateway_start_reports_errors_as_click_does(tmp_path: Path) -> None:
    """`anju edge run --config FILE` starts without click (anju.main); its error is the line
    click gives for the same command."""
    args = ["edge", "run", "--config", str(tmp_path / "nope.yaml")]
    through_click = CliRunner().invoke(cli, args)
    assert through_click.exit_code == 1
    direct = run_anju(*args)
    assert direct.returncode == 1
    assert direct.stderr == through_click.output


@pytest.mark.parametrize(
    ("args", "parsed"),
    [
        (["--config", "gw.yaml"], (Path("gw.yaml"), False)),
        (["--config=gw.yaml", "-v"], (Path("gw.yaml"), True)),
        (["--verbose", "--config", "gw.yaml"], (Path("gw.yaml"), True)),
        (["--config"], None),  # click says what is missing
        (["--config", "--verbose"], None),
        ([], None),
        (["--help"], None),
        (["--config", "gw.yaml", "--verbos"], None),
        (["--config", "gw.yaml", "extra"], None),
    ],
)
def test_only_a_plain_gateway_start_skips_click(
    args: list[str], parsed: tuple[Path, bool] | None
) -> None:
    assert gateway_arguments(args) == parsed


def test_bad_gateway_config_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    config.write_text("gateway_id: gw-1\nmqtt:\n  keepalive_s: 1\n")
    result = run_anju("edge", "run", "--config", str(config))
    assert_one_line_error(result, "mqtt.keepalive_s", "greater than or equal to 5")


def test_gateway_with_a_door_refuses_to_start_without_verified_models(tmp_path: Path) -> None:
    (tmp_path / "cam").mkdir()
    config = tmp_path / "gw.yaml"
    config.write_text(
        "gateway_id: gw-door\n"
        "doors:\n"
        "  - id: front\n"
        "    source: cam\n"
        "    gallery: gallery.json\n"
        "    models_dir: no-models-here\n"
    )
    result = run_anju("edge", "run", "--config", str(config))
    assert_one_line_error(result, "no-models-here", "anju models fetch")


def test_placeholder_secret_refused_in_production(tmp_path: Path) -> None:
    result = run_anju(
        "cloud",
        "migrate",
        env={
            "ANJU_ENV": "production",
            "ANJU_SECRET_KEY": "change-me",
            "ANJU_DATA_DIR": str(tmp_path),
        },
    )
    assert_one_line_error(result, "ANJU_SECRET_KEY", "placeholder")


def test_unknown_command_is_a_usage_error() -> None:
    result = run_anju("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("bad_port", ["-1", "abc"])
def test_bad_option_value_is_a_usage_error(bad_port: str) -> None:
    result = run_anju("sim", "meters", "--count", bad_port)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
