"""The API key's container never shows the key."""

from __future__ import annotations

import pytest

from allm_jupyter.secret import Secret


def test_secret_never_shows() -> None:
    secret = Secret("sekrit-123")
    assert "sekrit-123" not in repr(secret) + str(secret) + f"{secret}" + repr([secret])
    assert secret.reveal() == "sekrit-123"
    with pytest.raises(TypeError):
        vars(secret)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(secret)
