"""The question's text: ``{name}`` references to notebook values, and the notebook's own name."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

_REFERENCE = re.compile(
    r"\{(?P<ref>[A-Za-z_]\w*(?:\.[A-Za-z]\w*|\[(?:-?\d+|'[^'{}]*'|\"[^\"{}]*\")\])*)\}"
)
_STEP = re.compile(
    r"\.(?P<attr>[A-Za-z]\w*)|\[(?P<index>-?\d+)\]|\[(?P<q>['\"])(?P<key>.*?)(?P=q)\]"
)
_HEAD = re.compile(r"[A-Za-z_]\w*")


def interpolate(text: str, namespace: dict[str, Any]) -> str:
    """Replace ``{name}``, ``{name.attr}``, ``{name[0]}``, ``{In[3]}`` that resolve; keep other braces.

    Code pasted into a question is full of braces (dict literals, JSON, f-strings), so anything that
    is not a plain reference to an existing value stays exactly as written.
    """

    def substitute(match: re.Match[str]) -> str:
        before, after = text[match.start() - 1 : match.start()], text[match.end() : match.end() + 1]
        if before == "{" and after == "}":  # ``{{name}}``: an f-string's escaped braces
            return match.group()
        ref = match.group("ref")
        head = _HEAD.match(ref)
        if head is None or head.group() not in namespace:
            return match.group()
        value = namespace[head.group()]
        try:
            for step in _STEP.finditer(ref, head.end()):
                if step.group("attr"):
                    value = getattr(value, step.group("attr"))
                elif step.group("index") is not None:
                    value = value[int(step.group("index"))]
                else:
                    value = value[step.group("key")]
            return str(value)
        except Exception:  # a step that does not resolve, or a value that cannot be shown
            return match.group()

    return _REFERENCE.sub(substitute, text)


def notebook_name(namespace: dict[str, Any]) -> str:
    """The notebook's file name, where the front end tells the kernel (JupyterLab, VS Code)."""
    path = namespace.get("__vsc_ipynb_file__") or os.environ.get("JPY_SESSION_NAME") or ""
    return Path(str(path)).stem or "Notebook"
