"""Name -> object registries: one per kind of thing (models, datasets, metrics)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from genlab.errors import GenlabError

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names to registered objects with helpful lookup errors.

    >>> MODELS = Registry("model")
    >>> @MODELS.register("vae")
    ... class VAE: ...
    >>> MODELS.get("vae") is VAE
    True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items)) or "(none registered)"
            raise GenlabError(
                f"unknown {self.kind} {name!r}; valid {self.kind}s: {valid}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def names_in_order(self) -> list[str]:
        """Names in the order they were registered (e.g. the rows of a metric table)."""
        return list(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(sorted(self._items.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)
