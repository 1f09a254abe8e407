"""The single `anju` command. Subcommands are imported only when invoked, so `--help` stays fast."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from anju import __version__
from protocols.errors import AnjuError

# name -> "module:attribute" of a click command or group
COMMANDS: dict[str, str] = {
    "broker": "anju.commands.broker:broker",
    "cloud": "anju.commands.cloud:cloud",
    "edge": "anju.commands.edge:edge",
    "sim": "anju.commands.sim:sim",
    "demo": "anju.commands.demo:demo",
    "models": "anju.commands.models:models",
    "face": "anju.commands.face:face",
}


class LazyGroup(click.Group):
    """A group whose subcommands live in their own modules and load on first use."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            module_name, attr = self._lazy[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AnjuError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="anju")
def cli() -> None:
    """Anju (安居): run apartment buildings: gateways, meters, doors and the cloud controller."""


def main() -> None:
    try:
        cli.main(prog_name="anju")
    except KeyboardInterrupt:
        sys.exit(130)
