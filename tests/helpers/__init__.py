"""What the tests share, in one place (fixtures stay in tests/conftest.py).

- `runs`: `TINY`, the overrides of a fast complete run; `REPO`; `run_module`, an entry point
  started as a user starts it.
- `classifiers`: `build_classifier`, a small `ImageClassifier` without a config; the ImageNet
  mean and std.
- `datamodules`: `ready_datamodule`, a data module over a folder, set up.
- `training`: `fit_briefly`, a few CPU batches of a model logged to CSV; `logged_metrics`.
- `image_factory`: generated image files, good, odd and broken (import it by its own name).
- `probe`: `Probe`, a callback that records what a run did (rates, batches, what trained and
  changed), put in the runs of `src.train.train` by `probed()` or the `probe` fixture;
  `assert_trained` (import it by its own name).
- `fault_helpers`: callbacks that tests add to real runs to provoke faults (by Hydra target).
"""

from tests.helpers.classifiers import IMAGENET_MEAN, IMAGENET_STD, build_classifier
from tests.helpers.datamodules import ready_datamodule
from tests.helpers.runs import NO_DATA, REPO, TINY, module_env, run_module
from tests.helpers.training import fit_briefly, logged_metrics

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NO_DATA",
    "REPO",
    "TINY",
    "build_classifier",
    "fit_briefly",
    "logged_metrics",
    "module_env",
    "ready_datamodule",
    "run_module",
]
