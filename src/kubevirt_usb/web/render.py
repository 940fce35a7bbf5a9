"""The page templates (Jinja2, every value escaped) and the responses built from them."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.responses import HTMLResponse

from kubevirt_usb.printable import printable
from kubevirt_usb.web import views


def environment() -> Environment:
    env = Environment(loader=PackageLoader("kubevirt_usb.web", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["printable"] = printable
    env.filters["bytes"] = views.format_bytes
    return env


class Templates:
    """Renders whole pages and the fragments htmx swaps in."""

    def __init__(self, env: Environment | None = None) -> None:
        self.env = env or environment()

    def render(self, template: str, /, **context: Any) -> str:
        return self.env.get_template(template).render(**context)

    def response(self, template: str, /, *, status: int = 200,
                 headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.render(template, **context), status_code=status,
                            headers=headers)
