"""Testing support: a stand-in AnythingLLM server, its scripted scenarios and a pytest plugin.

>>> from allm_jupyter.testing import StandInServer, scenarios
>>> with StandInServer() as server:  # doctest: +SKIP
...     server.queue(scenarios.trickle("Slow answer.", delay=0.1))
...     ...  # point the client at server.base_url with server.api_key
"""

from allm_jupyter.testing import scenarios
from allm_jupyter.testing.data import answer_for
from allm_jupyter.testing.scenarios import REFUSAL_TEXT, RESET_TEXT, Scenario
from allm_jupyter.testing.server import (
    Prices,
    RecordedAttachment,
    RecordedRequest,
    StandInServer,
    StreamRecord,
)
from allm_jupyter.testing.store import expected_reply

__all__ = [
    "REFUSAL_TEXT",
    "RESET_TEXT",
    "Prices",
    "RecordedAttachment",
    "RecordedRequest",
    "Scenario",
    "StandInServer",
    "StreamRecord",
    "answer_for",
    "expected_reply",
    "scenarios",
]
