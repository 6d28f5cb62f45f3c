"""Transfer learning for image classification with Lightning and Hydra."""

from src.config.resolvers import register_resolvers

register_resolvers()
