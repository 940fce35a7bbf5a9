"""`kubevirt-usb`: the program with the agent, controller, web, plugin-serve and sandbox
subcommands."""

from __future__ import annotations

import click

from kubevirt_usb import __version__
from kubevirt_usb.lazycli import LazyGroup


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             lazy={"sandbox": "kubevirt_usb.sandbox.cli:sandbox",
                   "agent": "kubevirt_usb.agent.cli:agent",
                   "controller": "kubevirt_usb.controller.cli:controller",
                   "web": "kubevirt_usb.web.cli:web",
                   "plugin-serve": "kubevirt_usb.web.pluginserve:plugin_serve"})
@click.version_option(__version__, prog_name="kubevirt-usb")
def cli() -> None:
    """USB devices on Kubernetes nodes, into KubeVirt VMs."""


@cli.command()
def crds() -> None:
    """Print the CustomResourceDefinitions (YAML), generated from the models."""
    from kubevirt_usb.crds import render_yaml

    click.echo(render_yaml(), nl=False)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
