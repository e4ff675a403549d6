"""Capture-shaped sources for scripted answers."""

from allm_jupyter.testing import scenarios

SAMPLE_SOURCES = (
    scenarios.source(
        "team-handbook.md",
        "New starters get a buddy for their first two weeks.",
        score=0.82,
        url="https://intranet.example/handbook",
    ),
    scenarios.source("wire-fact-sheet.txt", "The mascot is a blue heron named Packet.", score=0.61),
)
