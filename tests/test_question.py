"""``{name}`` references in questions."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allm_jupyter.question import interpolate

NAMESPACE = {
    "topic": "onboarding",
    "items": ["a", "b"],
    "cfg": {"region": "eu"},
    "obj": SimpleNamespace(name="Ada", _hidden="x"),
    "In": ["", "first cell", "second cell"],
    "broken": SimpleNamespace(shown=type("Unshowable", (), {"__str__": lambda self: 1 / 0})()),
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("About {topic}.", "About onboarding."),
        ("{items[1]} {items[-1]} {cfg['region']} {obj.name}", "b b eu Ada"),
        ("{In[2]}", "second cell"),
        ("{missing} {items[9]} {obj.nope}", "{missing} {items[9]} {obj.nope}"),
        ("d = {'a': 1, \"b\": {topic}}", "d = {'a': 1, \"b\": onboarding}"),
        ('f"{{topic}}" and {{topic}}', 'f"{{topic}}" and {{topic}}'),
        ('json: {"k": [1, 2]}', 'json: {"k": [1, 2]}'),
        ("{topic.__class__}", "{topic.__class__}"),
        ("{obj._hidden}", "{obj._hidden}"),
        ("{topic!r} {topic:>10}", "{topic!r} {topic:>10}"),
        ("{broken.shown} stays", "{broken.shown} stays"),
    ],
)
def test_interpolation_replaces_only_what_resolves(text: str, expected: str) -> None:
    assert interpolate(text, NAMESPACE) == expected


@given(st.text())
def test_text_without_references_to_existing_values_is_kept_as_written(text: str) -> None:
    assert interpolate(text, {}) == text
    assert interpolate(text, {"unrelated_name_x": 1}) == text or "{unrelated_name_x" in text
