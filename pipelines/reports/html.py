"""Render report data to self-contained HTML (jinja2 templates) and JSON, and write them.

The templates in ``templates/`` inline their CSS; charts are inline SVG; nothing is loaded
from anywhere, so a page opens offline and can be mailed as one file. Values are escaped
(autoescape); only the SVG the platform draws is inserted as markup. Files are rewritten
only when their content changes, so a second run over the same lake leaves them untouched.
"""

from __future__ import annotations

import json
import os
import re
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

import jinja2
from markupsafe import Markup

TEMPLATES = Path(__file__).parent / "templates"
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u061c\u115f\u1160\u180e"
                        "\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]")


def visible(text: str) -> str:
    """``text`` with invisible and direction-changing characters written as ``[U+XXXX]``."""
    return _INVISIBLE.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)


def _finalize(value: object) -> object:
    """Every value a template prints (the platform's own markup, ``Markup``, is left alone)."""
    return visible(value) if isinstance(value, str) and not isinstance(value, Markup) \
        else value


def _num(value: object, places: int | None = None) -> str:
    """Thousands separators; decimals kept as given (amounts are exact strings in the data)."""
    if value is None or value == "":
        return "—"
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if places is not None:
        return f"{d:,.{places}f}"
    exponent = d.as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return f"{d:,.{decimals}f}"


def _pct(value: object, places: int = 2, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{float(value):{'+' if signed else ''}.{places}%}"


def _yesno(value: object) -> str:
    return {True: "yes", False: "NO"}.get(value, "—")  # type: ignore[arg-type]


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, finalize=_finalize)
    env.filters.update(num=_num, pct=_pct, yesno=_yesno)
    return env


def render(template: str, **context: object) -> str:
    return environment().get_template(template).render(**context)


def to_json(data: object) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True, default=str) + "\n"


def write_if_changed(path: Path, content: str | bytes) -> bool:
    """Write ``content`` to ``path`` unless it already holds exactly that; True if written."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    if path.exists() and path.read_bytes() == data:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)   # written before files were owner-only
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")   # concurrent runs never share one
    tmp.write_bytes(data)
    os.chmod(tmp, 0o600)   # reports name members and their faults: the owner's only
    tmp.replace(path)
    return True
