"""`kubevirt-usb sandbox`: the cluster in a box."""

from __future__ import annotations

import click


@click.group(invoke_without_command=True)
@click.pass_context
def sandbox(ctx: click.Context) -> None:
    """The whole system on one machine: API emulator, QEMU node and VM guests."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def _register() -> None:
    from kubevirt_usb.sandbox.apiserver_cli import apiserver

    sandbox.add_command(apiserver)


_register()
