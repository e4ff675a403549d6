"""Suite-wide settings: hypothesis never times an example (a busy machine is not a failure)."""

from hypothesis import settings

settings.register_profile("allm", deadline=None)
settings.load_profile("allm")
