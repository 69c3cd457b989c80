"""The model registry: family name -> GenerativeModel subclass.

Registering a family names it: the class's ``family`` and its config class's ``family`` are
set to the registry name, and so is the family of each zoo entry it declares, so no name is
written twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
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
            owner = vars(family.config_class).get("family")
            if owner and owner != name:
                raise ValueError(
                    f"{family.config_class.__name__} is already the config of the {owner!r} "
                    f"family; give {name!r} a config class of its own"
                )
            family.family = name
            family.config_class.family = name
            family.zoo_entries = tuple(replace(e, family=name) for e in family.zoo_entries)
            return add(family)

        return decorator


MODELS = ModelRegistry("model")
