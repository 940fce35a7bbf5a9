"""`kubevirt-usb`: the program with the agent, controller, web and sandbox subcommands."""

from __future__ import annotations

import click

from kubevirt_usb import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kubevirt-usb")
def cli() -> None:
    """USB devices on Kubernetes nodes, into KubeVirt VMs."""


def _register() -> None:
    from kubevirt_usb.sandbox.cli import sandbox

    cli.add_command(sandbox)


def main() -> None:
    _register()
    cli()


if __name__ == "__main__":
    main()
