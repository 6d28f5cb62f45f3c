"""From Hydra config to checked values and objects.

- `check_train_config`: every mistake in a training config as one line, before data is read.
- `register_resolvers`: `${scaled_lr:...}`, the learning rate that follows the batch size.
- `compose_config`: a config composed in-process as an entry point gets it (tests, benchmarks).
- `instantiate_group`, `to_plain`: config groups to objects, plain values.
- `compared_settings`: the columns of the loggers' hparams tables.
"""

from src.config.checks import check_train_config
from src.config.compose import CONF_DIR, compose_config
from src.config.hparams import compared_settings
from src.config.instantiation import instantiate_group, to_plain
from src.config.resolvers import register_resolvers

__all__ = [
    "CONF_DIR",
    "check_train_config",
    "compared_settings",
    "compose_config",
    "instantiate_group",
    "register_resolvers",
    "to_plain",
]
