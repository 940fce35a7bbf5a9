"""`kubectl usb`: the kubectl/oc plugin (the `kubectl-usb` program on PATH).

Errors are one line on stderr (`error: ...`) with an exit code from `exitcodes.ExitCode`;
results go to stdout, progress to stderr.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from kubevirt_usb import __version__
from kubevirt_usb.kubectl_usb.common import kube_options
from kubevirt_usb.kubectl_usb.exitcodes import CLIError, ExitCode, exit_codes_epilog, one_line
from kubevirt_usb.lazycli import LazyGroup

COMPLETE_VAR = "_KUBECTL_USB_COMPLETE"
DEBUG_VAR = "KUBECTL_USB_DEBUG"
_COMMANDS = {
    "list": "kubevirt_usb.kubectl_usb.cmd_list:list_devices",
    "attach": "kubevirt_usb.kubectl_usb.cmd_attach:attach",
    "detach": "kubevirt_usb.kubectl_usb.cmd_detach:detach",
    "status": "kubevirt_usb.kubectl_usb.cmd_status:status",
    "watch": "kubevirt_usb.kubectl_usb.cmd_status:watch",
    "allow": "kubevirt_usb.kubectl_usb.cmd_allow:allow",
    "prepare-vm": "kubevirt_usb.kubectl_usb.cmd_prepare:prepare_vm",
    "doctor": "kubevirt_usb.kubectl_usb.cmd_doctor:doctor",
    "completion": "kubevirt_usb.kubectl_usb.completion:completion",
}

_EPILOG = """\b
Examples:
  kubectl usb list                                   # every device on every node
  kubectl usb attach --serial AAA1 vm1 --wait        # that stick, into VM vm1
  kubectl usb status                                 # attachments: phase, bytes, errors
  kubectl usb detach vm1                             # every device of vm1
  kubectl usb allow --namespace lab --serial AAA1    # (admin) let namespace lab use it

\b
""" + exit_codes_epilog()


class OrderedLazyGroup(LazyGroup):
    """Commands in the order of the job (find, attach, see, let go, admin), not alphabetical."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)


@click.group(cls=OrderedLazyGroup, lazy=_COMMANDS, epilog=_EPILOG,
             context_settings={"help_option_names": ["-h", "--help"],
                               "max_content_width": 100})
@kube_options()
@click.version_option(__version__, prog_name="kubectl-usb")
def cli(**_settings: object) -> None:
    """Find USB devices on the cluster's nodes and attach them to KubeVirt VMs.

    kubectl's connection flags (--kubeconfig, --context, -n, -A) work before or after the
    command name.
    """


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Run `kubectl usb` and exit with its code; no traceback unless KUBECTL_USB_DEBUG is set."""
    prog = "kubectl-usb" if COMPLETE_VAR in os.environ else "kubectl usb"
    try:
        code = cli.main(args=argv, prog_name=prog, complete_var=COMPLETE_VAR,
                        standalone_mode=False)
    except CLIError as exc:
        _fail(exc.message, exc.code)
    except click.exceptions.Abort:
        _fail("interrupted", ExitCode.INTERRUPTED)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else prog
        _fail(f"{exc.format_message()} (see: {where} --help)", ExitCode.USAGE)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except Exception as exc:
        if os.environ.get(DEBUG_VAR):
            traceback.print_exc()
        _fail(f"internal error: {type(exc).__name__}: {exc} (set {DEBUG_VAR}=1 for details "
              "and please report it)", ExitCode.FAILED)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
