"""``Secret``: the API key's only container, so that nothing that shows objects can show the key."""

from __future__ import annotations

from typing import Any


class Secret:
    """Holds the API key so that no repr, str, log line, ``vars()`` or debugger shows it."""

    __slots__ = ("__value",)

    def __init__(self, value: str | None) -> None:
        self.__value = (value or "").strip()

    def reveal(self) -> str:
        return self.__value

    def __dir__(self) -> list[str]:
        """Attribute walks (``dir``, ``inspect.getmembers``, a debugger's variables view) skip the key."""
        return [name for name in super().__dir__() if name != "_Secret__value"]

    @property
    def well_formed(self) -> bool:
        """Whether an HTTP header can carry it (httpx's error for one that cannot quotes it)."""
        return self.__value.isprintable() and " " not in self.__value

    def __bool__(self) -> bool:
        return bool(self.__value)

    def __repr__(self) -> str:
        return "Secret('********')" if self.__value else "Secret(unset)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.__value == self.__value

    def __hash__(self) -> int:
        return hash(self.__value)

    def __reduce__(self) -> Any:
        raise TypeError("an API key is not to be pickled")
