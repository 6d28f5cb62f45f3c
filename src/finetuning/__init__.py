"""Fine-tuning: which parts of a pretrained network train, when, and how fast.

- `FreezePolicy`: the top-level children that train, BatchNorm in frozen parts kept fixed, and the
  gradual-unfreezing schedule; `head`: the replaced last layer, which always trains.
- `FineTuner`: a policy applied to one network, with the steps taken so far and the optimizer
  groups that follow (discriminative learning rates); `GradualUnfreezing` advances it by epoch.
- `optimization`: the optimizer and scheduler over those groups.
- `CachedFeatureDataModule`: the fixed feature extractor's shortcut, backbone features computed
  once and cached (`freeze.cache_features`).
"""

from src.finetuning.feature_cache import FeatureCache
from src.finetuning.feature_data import CachedFeatureDataModule, cached_features
from src.finetuning.finetuner import FineTuner
from src.finetuning.freeze import FreezePolicy, UnfreezeStep
from src.finetuning.gradual_unfreezing import GradualUnfreezing
from src.finetuning.head import find_head, in_head, replace_head
from src.finetuning.optimization import configure_optimization, optimizer_factory

__all__ = [
    "CachedFeatureDataModule",
    "FeatureCache",
    "FineTuner",
    "FreezePolicy",
    "GradualUnfreezing",
    "UnfreezeStep",
    "cached_features",
    "configure_optimization",
    "find_head",
    "in_head",
    "optimizer_factory",
    "replace_head",
]
