"""The default content of the stand-in server and the pure functions that answer from it.

Three workspaces cover the three default behaviours a client meets:

* ``research`` (chatMode ``chat``, three documents, one thread): RAG answers (sequence A) that
  quote the best matching chunk, or the fake-LLM reply when nothing matches;
* ``scratchpad`` (chatMode ``query``, no documents): the query-mode refusal (sequence B);
* ``assistant`` (chatMode ``automatic``, no documents): agent turns (sequence F).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_PROMPT",
    "INDEX_PAGE",
    "SEED_CREATED_AT",
    "SEED_DOCUMENTS",
    "SEED_PUBLISHED",
    "SEED_WORKSPACES",
    "SeedDocument",
    "SeedWorkspace",
    "answer_for",
    "chunk_body",
    "fake_reply",
    "overlap_score",
]

DEFAULT_PROMPT = (
    "Given the following conversation, relevant context, and a follow up question, reply with an "
    "answer to the current question the user is asking. The current date and time is {datetime}. "
    "Return only your response to the question given the above information following the users "
    "instructions as needed."
)
SEED_CREATED_AT = "2026-05-01T10:00:00.000Z"
SEED_PUBLISHED = "5/1/2026, 10:00:00 AM"


@dataclass(frozen=True)
class SeedDocument:
    """A document as the collector would have written it (``custom-documents/<name>.json``)."""

    name: str
    title: str
    text: str
    description: str = "Unknown"


@dataclass(frozen=True)
class SeedWorkspace:
    """A workspace row to create at start-up, with the documents embedded in it."""

    name: str
    slug: str
    chat_mode: str
    documents: tuple[str, ...] = ()
    threads: tuple[tuple[str, str], ...] = ()  # (name, slug)


SEED_DOCUMENTS: tuple[SeedDocument, ...] = (
    SeedDocument(
        name="team-handbook-onboarding",
        title="team-handbook-onboarding.md",
        description="Team handbook, section 2: onboarding",
        text=(
            "New team members get their laptop, building badge and accounts on their first day. "
            "Your onboarding buddy meets you at the front desk at nine and walks you through the "
            "lab tour.\n\n"
            "During the first week every newcomer pairs with their buddy on one real ticket. "
            "Access to the shared datasets is granted after the data-protection training, which "
            "takes about two hours."
        ),
    ),
    SeedDocument(
        name="research-facility-fact-sheet",
        title="research-facility-fact-sheet.txt",
        text=(
            "The Research facility is located on Loopback Lane. Its mascot is a blue heron named "
            "Packet. Opening hours are nine to five on weekdays. The cafeteria serves soup every "
            "Tuesday."
        ),
    ),
    SeedDocument(
        name="project-glossary",
        title="project-glossary.md",
        description="Terms used across the project",
        text=(
            "A workspace is a container of documents and chats with its own settings. "
            "Documents are split into chunks and embedded so that questions can retrieve them.\n\n"
            "Retrieval-augmented generation means the model answers from the retrieved chunks, "
            "and every answer cites its sources."
        ),
    ),
)

SEED_WORKSPACES: tuple[SeedWorkspace, ...] = (
    SeedWorkspace(
        name="Research",
        slug="research",
        chat_mode="chat",
        documents=tuple(document.name for document in SEED_DOCUMENTS),
        threads=(("Onboarding questions", "onboarding-questions"),),
    ),
    SeedWorkspace(name="Scratchpad", slug="scratchpad", chat_mode="query"),
    SeedWorkspace(name="Assistant", slug="assistant", chat_mode="automatic"),
)

INDEX_PAGE = (
    "\n"
    "       <!DOCTYPE html>\n"
    '        <html lang="en">\n'
    "          <head>\n"
    '            <meta charset="UTF-8" />\n'
    '            <meta name="viewport" content="width=device-width, initial-scale=1.0" />\n'
    '            <link type="image/svg+xml" href="/favicon.png" >\n'
    "<title >AnythingLLM | Your personal LLM trained on anything</title>\n"
    '<meta name="title" content="AnythingLLM | Your personal LLM trained on anything" >\n'
    '<meta description="title" content="AnythingLLM | Your personal LLM trained on anything" >\n'
    '<meta property="og:type" content="website" >\n'
    '<meta property="og:url" content="https://anythingllm.com" >\n'
    '<meta property="og:title" content="AnythingLLM | Your personal LLM trained on anything" >\n'
    '<meta property="og:description" content="AnythingLLM | Your personal LLM trained on anything" >\n'
    '<meta property="og:image" content="https://raw.githubusercontent.com/Mintplex-Labs/anything-llm/master/images/promo.png" >\n'
    '<meta property="twitter:card" content="summary_large_image" >\n'
    '<meta property="twitter:url" content="https://anythingllm.com" >\n'
    '<meta property="twitter:title" content="AnythingLLM | Your personal LLM trained on anything" >\n'
    '<meta property="twitter:description" content="AnythingLLM | Your personal LLM trained on anything" >\n'
    '<meta property="twitter:image" content="https://raw.githubusercontent.com/Mintplex-Labs/anything-llm/master/images/promo.png" >\n'
    '<link rel="icon" href="/favicon.png" >\n'
    '<link rel="apple-touch-icon" href="/favicon.png" >\n'
    '<meta name="mobile-web-app-capable" content="yes" >\n'
    '<meta name="apple-mobile-web-app-capable" content="yes" >\n'
    '<meta name="apple-mobile-web-app-status-bar-style" content="black-translucent" >\n'
    '<link rel="manifest" href="/manifest.json" >\n'
    '            <script type="module" crossorigin src="/index.js"></script>\n'
    '            <link rel="stylesheet" href="/index.css">\n'
    "          </head>\n"
    "          <body>\n"
    '            <div id="root" class="h-screen"></div>\n'
    "          </body>\n"
    "        </html>"
)
"""What a production AnythingLLM answers, with 200, for every path no route takes (any method):
the frontend's index page from ``MetaGenerator`` with the default meta tags (1.16.0 and v1.9.1
alike). There is no 404 for an unknown path."""

# fmt: off
_STOPWORDS = frozenset({
    "a", "about", "an", "and", "any", "are", "as", "at", "be", "can", "could", "did", "do",
    "does", "for", "from", "get", "got", "have", "how", "i", "in", "is", "it", "its", "me", "my",
    "of", "on", "or", "our", "please", "say", "should", "tell", "that", "the", "their", "there",
    "this", "to", "us", "was", "we", "what", "when", "where", "which", "who", "why", "will",
    "with", "would", "you", "your",
})
# fmt: on
_HEADER_END = "</document_metadata>\n\n"
_SENTENCE = re.compile(r"(.+?[.!?])(?:\s|$)", re.DOTALL)


def _terms(text: str) -> set[str]:
    """Lower-cased content words, crudely singularised so that ``days`` finds ``day``."""
    words = re.findall(r"\w+", text.lower())
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words if w not in _STOPWORDS}


def overlap_score(query: str, passage: str) -> float:
    """Share of the query's content words found in the passage (0..1): a deterministic
    stand-in for vector similarity."""
    wanted = _terms(query)
    return len(wanted & _terms(passage)) / len(wanted) if wanted else 0.0


def chunk_body(source: Mapping[str, Any]) -> str:
    """The chunk text of a source, without its ``<document_metadata>`` header."""
    text = str(source.get("text") or "")
    return text.split(_HEADER_END, 1)[-1]


def fake_reply(message: str) -> str:
    """The reply of the fake LLM used for the captures."""
    digest = hashlib.sha256(message.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f'Fake reply {digest}: you said "{message}". The end.'


def answer_for(message: str, sources: Sequence[Mapping[str, Any]] = ()) -> str:
    """The stand-in LLM's answer: quote the best source's sentence that shares most words with the
    question (the first one on a tie), or, with no sources, the captures' fake reply. Pure, so
    tests can predict every streamed text."""
    if not sources:
        return fake_reply(message)
    top = sources[0]
    body = chunk_body(top).strip()
    sentences = [m.group(1) for m in _SENTENCE.finditer(body)] or [body]
    best = max(sentences, key=lambda sentence: overlap_score(message, sentence))
    return f"According to {top.get('title')}: {best}"
