"""`kubevirt-usb sandbox`: the cluster in a box."""

from __future__ import annotations

import click

from kubevirt_usb.lazycli import LazyGroup


@click.group(cls=LazyGroup, invoke_without_command=True,
             lazy={"apiserver": "kubevirt_usb.sandbox.apiserver_cli:apiserver"})
@click.pass_context
def sandbox(ctx: click.Context) -> None:
    """The whole system on one machine: API emulator, QEMU node and VM guests."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
