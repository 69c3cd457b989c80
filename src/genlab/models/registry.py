"""The model registry: family name -> GenerativeModel subclass.

Registering a family names it: the class's ``family`` and its config class's ``family`` are
set to the registry name, so no name is written twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from genlab.registry import Registry

if TYPE_CHECKING:
    from genlab.models.base import GenerativeModel

    Family = type[GenerativeModel]
else:
    Family = type


class ModelRegistry(Registry[Family]):
    def register(self, name: str) -> Callable[[Family], Family]:
        add = super().register(name)

        def decorator(family: Family) -> Family:
            family.family = name
            family.config_class.family = name
            return add(family)

        return decorator


MODELS = ModelRegistry("model")
