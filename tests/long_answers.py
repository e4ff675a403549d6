"""Long structured answers, generated from a seed: headings, paragraphs with bold, links, code
spans and inline math, lists, tables, block quotes, display math and fenced code holding blank
lines and dollar signs, so that a long answer in parts has every kind of block at a seam."""

from __future__ import annotations

import random

_WORDS = ("the", "model", "reads", "each", "document", "and", "answers", "from", "what", "it")


def _sentence(rng: random.Random, number: int) -> str:
    words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 16))).capitalize()
    return f"{words} with **bold {number}**, `code_{number}` and [a link](https://example.org/{number})."


def _block(rng: random.Random, number: int) -> str:
    kind = rng.choice(("paragraph", "paragraph", "list", "code", "math", "table", "quote"))
    if kind == "list":
        return "\n".join(f"- item {number}.{k}: {_sentence(rng, number)}" for k in range(3))
    if kind == "code":
        return f"```python\nprice = '$5 and $10'  # block {number}\n\nprint(price)\n```"
    if kind == "math":
        return f"The area is $x^{number % 9 + 2}$ here.\n\n$$\na_{{{number}}} + b^2\n$$"
    if kind == "table":
        return f"| block | cost |\n|---|---|\n| {number} | `$3` and $4 |"
    if kind == "quote":
        return f"> {_sentence(rng, number)}\n>\n> quoted on {number}"
    return " ".join(_sentence(rng, number) for _ in range(rng.randint(1, 4)))


def structured_answer(size: int, seed: int = 0) -> str:
    """About ``size`` characters of Markdown: ``## Section N`` headings, each followed by blocks."""
    rng = random.Random(seed)
    blocks: list[str] = []
    total = number = 0
    while total < size:
        number += 1
        block = f"## Section {number}" if number % 6 == 1 else _block(rng, number)
        blocks.append(block)
        total += len(block) + 2
    return "\n\n".join(blocks) + "\n"
