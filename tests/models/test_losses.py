"""Class imbalance in the loss: `loss.class_weights` (auto or by class name) and `loss=focal`,
for one label per image (weighted cross-entropy) and several (binary cross-entropy's
`pos_weight`), checked against values worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.models.losses import ClassificationLoss, build_loss, class_weights
from src.train import train
from src.utils.errors import UserError
from tests.helpers import TINY
from tests.helpers.image_factory import write_class_folders

LOGITS = torch.tensor([[2.0, 0.0], [0.5, 1.5], [1.0, 1.0], [-1.0, 2.0]])
TARGETS = torch.tensor([0, 1, 0, 1])


def test_auto_weights_are_inverse_frequencies_with_a_mean_of_one() -> None:
    assert class_weights("auto", ["cat", "dog"], [10, 30], 40, "multiclass") == pytest.approx(
        [1.5, 0.5]
    )
    # several labels per image: each class's negatives over its positives
    assert class_weights("auto", ["a", "b"], [10, 30], 40, "multilabel") == pytest.approx(
        [3.0, 1 / 3]
    )
    assert class_weights({"dog": 2.0}, ["cat", "dog"], [1, 1], 2, "multiclass") == [1.0, 2.0]
    assert class_weights(None, ["cat", "dog"], [1, 1], 2, "multiclass") is None


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"bird": 2.0}, r"loss.class_weights names \['bird'\], which are not classes"),
        ({"cat": -1}, r"loss.class_weights.cat=-1 must be a number >= 0"),
        ("inverse", r"loss.class_weights='inverse' must be auto, null, or weights by class"),
    ],
)
def test_wrong_weights_are_refused_in_one_line(setting, message: str) -> None:
    with pytest.raises(UserError, match=message):
        class_weights(setting, ["cat", "dog"], [1, 1], 2, "multiclass")


def test_weighted_cross_entropy_equals_the_hand_computed_value() -> None:
    weights = [1.5, 0.5]
    log_p = LOGITS.log_softmax(dim=1)
    picked = -log_p[torch.arange(4), TARGETS]
    w = torch.tensor(weights)[TARGETS]
    expected = float((w * picked).sum() / w.sum())  # 1.5 and 0.5 weigh each image's term
    loss = ClassificationLoss("multiclass", weights)(LOGITS, TARGETS)
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(loss) != pytest.approx(float(picked.mean()), rel=1e-3)  # the weights matter


@pytest.mark.parametrize("weights", [None, [1.5, 0.5]])
def test_focal_loss_with_gamma_0_is_cross_entropy(weights) -> None:
    focal = ClassificationLoss("multiclass", weights, gamma=0.0)
    plain = torch.nn.CrossEntropyLoss(weight=None if weights is None else torch.tensor(weights))
    assert float(focal(LOGITS, TARGETS)) == pytest.approx(float(plain(LOGITS, TARGETS)), rel=1e-6)
    # the focal path itself, at gamma 0, agrees as well
    focal.gamma = 1e-12
    assert float(focal(LOGITS, TARGETS)) == pytest.approx(float(plain(LOGITS, TARGETS)), rel=1e-5)


def test_focal_loss_down_weights_what_the_model_gets_right() -> None:
    p_true = LOGITS.softmax(dim=1)[torch.arange(4), TARGETS]
    expected = float(((1 - p_true) ** 2 * -p_true.log()).mean())
    focal = build_loss("multiclass", {"name": "focal", "gamma": 2.0}, 0.0)
    assert float(focal(LOGITS, TARGETS)) == pytest.approx(expected, rel=1e-5)


def test_multi_label_weights_are_each_classs_pos_weight() -> None:
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    pos_weight = torch.tensor([3.0, 0.5])
    p = LOGITS.sigmoid()
    by_hand = -(pos_weight * targets * p.log() + (1 - targets) * (1 - p).log())
    loss = ClassificationLoss("multilabel", pos_weight.tolist())(LOGITS, targets)
    assert float(loss) == pytest.approx(float(by_hand.mean()), rel=1e-5)
    focal = ClassificationLoss("multilabel", pos_weight.tolist(), gamma=0.0)(LOGITS, targets)
    assert float(focal) == pytest.approx(float(loss))


@pytest.mark.slow
def test_a_run_with_auto_weights_trains_with_its_training_splits_weights(
    make_config, tmp_path: Path
) -> None:
    root = write_class_folders(tmp_path / "images", {"cat": 5, "dog": 15})
    cfg = make_config(["data=folder", f"data.root={root}", *TINY, "loss.class_weights=auto",
                       "data.val_fraction=0.2"])  # fmt: skip
    train(cfg)
    ckpt = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    weights = ckpt["hyper_parameters"]["loss"]["class_weights"]
    # the training split holds 4 cats and 12 dogs
    assert weights == pytest.approx([1.5, 0.5])
