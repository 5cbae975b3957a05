"""The console's Jinja2 templates (package files), autoescaped: every value a page shows,
a key's description or a tag or a policy alike, is escaped as HTML."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import jinja2


def when(value: Any) -> str:
    """A time as the console shows it: UTC, to the second."""
    if value is None or value == "" or isinstance(value, jinja2.Undefined):
        return "-"
    if isinstance(value, int | float):
        value = dt.datetime.fromtimestamp(value, dt.UTC)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


class Templates:
    def __init__(self) -> None:
        self._environment = jinja2.Environment(
            loader=jinja2.PackageLoader("openkms.console", "templates"),
            autoescape=True,
            undefined=jinja2.ChainableUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._environment.filters["when"] = when
        self._environment.filters["json"] = lambda value: json.dumps(value, indent=2, default=str)

    def render(self, template: str, **values: Any) -> bytes:
        return self._environment.get_template(template).render(**values).encode()
