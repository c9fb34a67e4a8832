"""Runs the guide's snippets as a user would, against a real server."""

from __future__ import annotations

import contextlib
import io
import os
from typing import Any

GUIDE_BASE_URL = 'BASE_URL = "https://server.smartlead.ai/api/v1"'


def bind(code: str, line: str, replacement: str) -> str:
    assert line in code, f"snippet no longer contains {line!r}"
    return code.replace(line, replacement)


def run_snippet(
    code: str,
    base_url: str,
    api_key: str,
    replacements: dict[str, str] | None = None,
    **names: Any,
) -> tuple[dict[str, Any], str]:
    """Execute a snippet; the key comes from SMARTLEAD_API_KEY, as the guide reads it.

    Returns the snippet's namespace and what it printed.
    """
    import requests

    if GUIDE_BASE_URL in code:
        code = bind(code, GUIDE_BASE_URL, f"BASE_URL = {base_url!r}")
    for line, replacement in (replacements or {}).items():
        code = bind(code, line, replacement)
    namespace: dict[str, Any] = {
        "requests": requests,
        "os": os,
        "BASE_URL": base_url,
        "API_KEY": api_key,
        **names,
    }
    printed = io.StringIO()
    previous = os.environ.get("SMARTLEAD_API_KEY")
    os.environ["SMARTLEAD_API_KEY"] = api_key
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(code, "<guide snippet>", "exec"), namespace)
    finally:
        if previous is None:
            os.environ.pop("SMARTLEAD_API_KEY", None)
        else:
            os.environ["SMARTLEAD_API_KEY"] = previous
    return namespace, printed.getvalue()
