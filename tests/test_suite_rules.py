"""The suite's own rule (issue 12, point 1): no test depends on the machine's speed. A busy
2-core machine must not fail a test, so no assert reads a clock and no hypothesis deadline is set;
speed targets live in benchmarks/, as ratios measured in the same run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
CLOCKS = {"monotonic", "perf_counter", "time", "process_time"}


def suite_files() -> list[Path]:
    return sorted(path for path in TESTS.rglob("*.py") if path.is_file())


def _reads_a_clock(node: ast.AST) -> bool:
    return any(
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr in CLOCKS
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id == "time"
        for call in ast.walk(node)
    )


def _sets_a_deadline(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.keyword)
        and node.arg == "deadline"
        and not (isinstance(node.value, ast.Constant) and node.value.value is None)
    )


@pytest.mark.parametrize("path", suite_files(), ids=lambda path: str(path.relative_to(TESTS)))
def test_no_assert_reads_a_clock_and_no_deadline_is_set(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    timed = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Assert) and _reads_a_clock(n)]
    deadlines = [n.value.lineno for n in ast.walk(tree) if _sets_a_deadline(n)]
    assert not timed, f"asserts on a clock at lines {timed}"
    assert not deadlines, f"hypothesis deadlines at lines {deadlines}"
