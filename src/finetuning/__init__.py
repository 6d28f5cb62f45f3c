"""Fine-tuning: which parts of a pretrained network train, when, and how fast.

- `freeze`: `FreezePolicy`, the top-level children that train, BatchNorm in frozen parts kept
  fixed, and the gradual-unfreezing schedule; `head`: the replaced last layer, always trained.
- `finetuner`: `FineTuner`, a policy applied to one network, with the steps taken so far and the
  optimizer groups that follow (discriminative learning rates); `gradual_unfreezing` advances it.
- `optimization`: the optimizer and scheduler over those groups.
- `feature_cache`, `feature_data`: the fixed feature extractor's shortcut, backbone features
  computed once and cached (`freeze.cache_features`).
"""
