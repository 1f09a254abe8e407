"""The `anju` command's entry point. `anju edge run`, what a gateway's service runs all day,
starts without click: a module imported is resident for the life of the process, and click
is most of a megabyte of a small box's memory. Every other command, and `edge run` with
anything but `--config FILE` and `-v`, goes through the click app (`anju.cli`), which also
gives the help and the errors of a mistyped line."""

from __future__ import annotations

import sys
from pathlib import Path

from protocols.errors import AnjuError


def gateway_arguments(args: list[str]) -> tuple[Path, bool] | None:
    """`--config FILE` (or `--config=FILE`) and an optional `-v`/`--verbose`, as `anju edge
    run` takes them; None for anything else."""
    config: str | None = None
    verbose = False
    rest = iter(args)
    for arg in rest:
        if arg in ("-v", "--verbose"):
            verbose = True
        elif arg == "--config":
            config = next(rest, None)
        elif arg.startswith("--config="):
            config = arg.removeprefix("--config=")
        else:
            return None
    if not config or config.startswith("-"):
        return None
    return Path(config), verbose


def main() -> None:
    args = sys.argv[1:]
    gateway = gateway_arguments(args[2:]) if args[:2] == ["edge", "run"] else None
    if gateway is None:
        from anju.cli import main as click_main  # noqa: PLC0415 - see the module docstring

        click_main()
        return
    from anju.runner import run_gateway_file  # noqa: PLC0415

    try:
        run_gateway_file(*gateway)
    except AnjuError as exc:  # as click reports it (anju.cli.LazyGroup)
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
