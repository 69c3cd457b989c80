"""The model registry: family name -> GenerativeModel subclass."""

from __future__ import annotations

from typing import TYPE_CHECKING

from genlab.registry import Registry

if TYPE_CHECKING:
    from genlab.models.base import GenerativeModel

MODELS: Registry[type[GenerativeModel]] = Registry("model")
