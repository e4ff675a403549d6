"""Tests against a real AnythingLLM: the kit's servers (scripts/realserver.sh) or the user's own."""
