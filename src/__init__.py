"""Transfer learning for image classification with Lightning and Hydra."""

from src.utils.resolvers import register_resolvers

register_resolvers()
