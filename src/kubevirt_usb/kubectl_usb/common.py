"""What the commands share: kubectl's connection flags (accepted before and after the command
name), the device selector flags, `-o`, `--wait`/`--timeout`, and running a command's body
against a `Session`."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from kubevirt_usb.kubectl_usb.objects import name_problem
from kubevirt_usb.kubectl_usb.selection import Selector, SelectorError, selector_from_flags
from kubevirt_usb.kubectl_usb.session import Session, Settings
from kubevirt_usb.kubectl_usb.tables import parse_duration

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
KUBE_KEYS = ("kubeconfig", "context", "namespace", "all_namespaces", "request_timeout")
SELECTOR_KEYS = ("vendor", "product", "usb_id", "serial", "product_name", "node", "port")


def _duration(ctx: click.Context | None, param: click.Parameter | None,
              value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def checked_name(what: str) -> Callable[[click.Context | None, click.Parameter | None, Any], Any]:
    """A click callback that refuses a value (or each of several) that cannot name a `what`
    ("VM name", "namespace", ...): a usage error before any request."""

    def check(ctx: click.Context | None, param: click.Parameter | None, value: Any) -> Any:
        for one in value if isinstance(value, tuple) else [value]:
            problem = None if one is None else name_problem(one, what=what)
            if problem is not None:
                raise click.BadParameter(problem)
        return value

    return check


def kube_options(*, namespace: bool = True) -> Callable[[F], F]:
    """kubectl's connection flags. With `namespace=False` the command has its own -n."""

    def decorate(f: F) -> F:
        options = [
            click.option("--kubeconfig", type=click.Path(path_type=Path, dir_okay=False),
                         default=None, help="Path to the kubeconfig file (default: $KUBECONFIG, "
                         "else ~/.kube/config, else the pod's service account)."),
            click.option("--context", default=None, help="The kubeconfig context to use."),
            click.option("--request-timeout", default=None, callback=_duration,
                         metavar="DURATION", help="How long to wait for each API request "
                         "(e.g. 10s; 0: no limit, as for kubectl) [default: 10s]."),
        ]
        if namespace:
            options += [
                click.option("-n", "--namespace", default=None, metavar="NAMESPACE",
                             callback=checked_name("namespace"),
                             shell_complete=complete_namespaces,
                             help="The namespace (default: the context's)."),
                click.option("-A", "--all-namespaces", is_flag=True, default=None,
                             help="Every namespace (where the command reads attachments)."),
            ]
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def settings_from(ctx: click.Context, given: dict[str, Any]) -> Settings:
    """The connection settings: the command's own flags, else the ones before its name."""
    root = ctx.find_root().params

    def pick(key: str) -> Any:
        value = given.get(key)
        return value if value is not None else root.get(key)

    timeout = pick("request_timeout")
    return Settings(kubeconfig=pick("kubeconfig"), context=pick("context"),
                    namespace=pick("namespace"), all_namespaces=bool(pick("all_namespaces")),
                    request_timeout=10.0 if timeout is None else float(timeout) or None)


def pop_settings(ctx: click.Context, kwargs: dict[str, Any]) -> Settings:
    """Take the connection flags out of a command's keyword arguments."""
    given = {key: kwargs.pop(key) for key in KUBE_KEYS if key in kwargs}
    return settings_from(ctx, given)


def selector_options(f: F) -> F:
    """The flags that pick a device by what it is, where it is plugged in."""
    options = [
        click.option("--serial", default=None, shell_complete=lambda c, p, i:
                     complete_device_field(c, "serial", i),
                     help="The device's serial number (exact)."),
        click.option("--vendor", default=None, metavar="VID",
                     help="Vendor id, 4 hex digits (e.g. 46f4)."),
        click.option("--product", default=None, metavar="PID",
                     help="Product id, 4 hex digits (e.g. 0001)."),
        click.option("--id", "usb_id", default=None, metavar="VID:PID",
                     help="Vendor and product id as lsusb shows them (e.g. 067b:2303)."),
        click.option("--product-name", default=None, metavar="TEXT",
                     help="The product string or usb.ids name (exact)."),
        click.option("--node", default=None, shell_complete=lambda c, p, i:
                     complete_device_field(c, "node", i),
                     help="The node the device is plugged into."),
        click.option("--port", default=None, metavar="PATH",
                     help="The port path on that node (e.g. 3-1.4)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def pop_selector(kwargs: dict[str, Any], *, device: str | None = None) -> Selector:
    """Take the selector flags out of a command's keyword arguments, checked."""
    given = {key: kwargs.pop(key) for key in SELECTOR_KEYS if key in kwargs}
    try:
        return selector_from_flags(device=device, **given)
    except SelectorError as exc:
        raise click.UsageError(str(exc)) from exc


def output_option(choices: tuple[str, ...], *, default: str | None) -> Callable[[F], F]:
    return click.option("-o", "--output", type=click.Choice(choices), default=default,
                        help="Output format: " + "|".join(choices) + ".")


def wait_options(*, wait_default: bool, timeout_default: str) -> Callable[[F], F]:
    def decorate(f: F) -> F:
        f = click.option("--timeout", default=timeout_default, show_default=True,
                         callback=_duration, metavar="DURATION",
                         help="How long --wait waits (e.g. 90s, 5m).")(f)
        return click.option("--wait/--no-wait", default=wait_default, show_default=True,
                            help="Wait until done, showing progress.")(f)
    return decorate


def run(settings: Settings, body: Callable[[Session], Awaitable[T]]) -> T:
    """Open a session, run the command's body with it, close it."""

    async def main() -> T:
        session = Session.open(settings)
        try:
            return await body(session)
        finally:
            await session.close()

    return asyncio.run(main())


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def progress(line: str) -> None:
    """A progress line for people (stderr, so stdout stays for results)."""
    click.echo(line, err=True)


def stdin_is_tty() -> bool:
    return sys.stdin.isatty()


# ---- completion of names from the cluster (best effort, silent on any failure) -------------


def _complete(ctx: click.Context, fetch: Callable[[Session], Awaitable[list[str]]],
              incomplete: str) -> list[str]:
    given = {key: ctx.params.get(key) for key in KUBE_KEYS}
    settings = settings_from(ctx, given)
    settings = Settings(kubeconfig=settings.kubeconfig, context=settings.context,
                        namespace=settings.namespace, request_timeout=3.0)
    try:
        values = run(settings, fetch)
    except Exception:  # completion must never fail loudly
        return []
    return sorted(v for v in set(values) if v.startswith(incomplete))


def complete_devices(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    async def fetch(session: Session) -> list[str]:
        return [str(d["metadata"]["name"]) for d in await session.devices()]

    return _complete(ctx, fetch, incomplete)


def complete_device_field(ctx: click.Context, field: str, incomplete: str) -> list[str]:
    async def fetch(session: Session) -> list[str]:
        return [str(d["status"][field]) for d in await session.devices()
                if (d.get("status") or {}).get(field)]

    return _complete(ctx, fetch, incomplete)


def complete_vms(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from kubevirt_usb.kube.resources import VirtualMachine

    async def fetch(session: Session) -> list[str]:
        vms = await session.listing(VirtualMachine, namespace=session.namespace)
        return [str(v["metadata"]["name"]) for v in vms.items]

    return _complete(ctx, fetch, incomplete)


def complete_attachments_and_vms(ctx: click.Context, param: click.Parameter,
                                 incomplete: str) -> list[str]:
    from kubevirt_usb.kube.resources import VirtualMachine

    async def fetch(session: Session) -> list[str]:
        found = await session.attachments(namespace=session.namespace)
        vms = await session.listing(VirtualMachine, namespace=session.namespace)
        return [str(a["metadata"]["name"]) for a in found] + \
            [str(v["metadata"]["name"]) for v in vms.items]

    return _complete(ctx, fetch, incomplete)


def complete_namespaces(ctx: click.Context, param: click.Parameter,
                        incomplete: str) -> list[str]:
    from lightkube.resources.core_v1 import Namespace

    async def fetch(session: Session) -> list[str]:
        return [str(n["metadata"]["name"]) for n in (await session.listing(Namespace)).items]

    return _complete(ctx, fetch, incomplete)


def command_settings(f: F) -> F:
    """Hand the command `settings=` instead of the raw connection flags."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        kwargs["settings"] = pop_settings(ctx, kwargs)
        return f(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
