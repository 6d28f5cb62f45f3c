"""Hydra registers sweepers found in `hydra_plugins`; the search itself is
`src.sweeps.optuna_search` (Optuna is imported only when a search runs)."""

from src.sweeps.optuna_search import OptunaSearch


class OptunaSweeper(OptunaSearch):
    """`hydra/sweeper=optuna_search` (conf/hydra/sweeper/optuna_search.yaml)."""
