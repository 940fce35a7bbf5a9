"""`kubectl usb`: the kubectl/oc plugin."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Find USB devices on the cluster's nodes and attach them to VMs."""


def main() -> None:
    cli()
