"""The feature extractor's cache: the full network's logits, recomputed on any change of a key."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset, WeightedRandomSampler

from src.data.sources.folder import ImageFolderDataModule
from src.finetuning.feature_cache import FeatureCache
from src.finetuning.feature_data import CachedFeatureDataModule, cached_features
from src.train import build_datamodule, train
from src.utils.errors import UserError
from tests.helpers import build_classifier


def images(root: Path, image_size: int = 32) -> ImageFolderDataModule:
    dm = ImageFolderDataModule(str(root), image_size=image_size, batch_size=4, num_workers=0)
    dm.prepare_data()
    return dm


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_cached_features_give_the_same_logits(
    name: str, stripes_root: Path, tmp_path: Path
) -> None:
    model = build_classifier([], name=name, cache_features=True, seed=0)
    data = images(stripes_root)
    features = cached_features(data, model, FeatureCache(tmp_path))
    model.eval()
    batch, labels = next(iter(data.val_dataloader()))
    with torch.inference_mode():
        full = model(batch)
        head = model.net.get_submodule(model.head_name)
        _, val = features
        cached = head(val.tensors[0][: len(batch)])
    assert torch.allclose(full, cached, atol=1e-5)
    assert torch.equal(val.tensors[1][: len(batch)], labels)


def test_any_change_of_a_key_recomputes(stripes_root: Path, tmp_path: Path, monkeypatch) -> None:
    cache = FeatureCache(tmp_path / "cache")
    model = build_classifier([], cache_features=True, seed=0)
    cached_features(images(stripes_root), model, cache)
    assert cache.computed == 1
    cached_features(images(stripes_root), model, cache)
    assert cache.computed == 1  # nothing changed: read from disk

    cached_features(images(stripes_root, image_size=40), model, cache)
    assert cache.computed == 2  # image size (and with it the transform)

    with torch.no_grad():
        model.net.layer1[0].conv1.weight[0, 0, 0, 0] += 1.0
    cached_features(images(stripes_root), model, cache)
    assert cache.computed == 3  # one backbone weight

    with torch.no_grad():
        model.net.fc.weight.add_(1.0)
    cached_features(images(stripes_root), model, cache)
    assert cache.computed == 3  # the head is not part of the key: it is what trains

    model.hparams.model["mean"] = [0.5, 0.5, 0.5]
    cached_features(images(stripes_root), model, cache)
    assert cache.computed == 4  # normalisation

    monkeypatch.setattr("src.finetuning.feature_data.DECODING", "another decoder")
    cached_features(images(stripes_root), model, cache)
    assert cache.computed == 5  # the decoding rules

    for views, computed in ((2, 6), (2, 6), (3, 7)):  # freeze.cached_views
        train, _ = cached_features(images(stripes_root), model, cache, views=views)
        assert (cache.computed, len(train.views)) == (computed, views)

    copy = tmp_path / "copy"
    for path in stripes_root.rglob("*.png"):
        target = copy / path.relative_to(stripes_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    cached_features(images(copy), model, cache)
    computed = cache.computed
    victim = next((copy / "vertical").glob("*.png"))
    victim.write_bytes(next((copy / "horizontal").glob("*.png")).read_bytes())
    cached_features(images(copy), model, cache)
    assert cache.computed > computed  # a file's content (size / modification time)


def test_training_on_cached_features(
    make_config, folder_overrides, tmp_path: Path, monkeypatch
) -> None:
    def backbone_over_images(*args, **kwargs):
        raise AssertionError("the report ran the backbone over the validation images again")

    monkeypatch.setattr("src.callbacks.evaluation_report.logits_over", backbone_over_images)
    cfg = make_config([*folder_overrides, "freeze=all", "freeze.cache_features=true"])
    best = train(cfg)
    assert best is not None
    assert list((tmp_path / "data" / ".cache" / "features").glob("*.pt"))
    checkpoint = torch.load(
        Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True
    )
    assert any(key.startswith("net.layer4.") for key in checkpoint["state_dict"])
    # the best checkpoint's report scores the images behind the features, from their features
    report = (Path(cfg.paths.output_dir) / "evaluation" / "metrics.json").read_text()
    assert json.loads(report)["accuracy"] == pytest.approx(best)


def test_cache_needs_a_fixed_backbone(make_config, folder_overrides) -> None:
    cfg = make_config([*folder_overrides, "freeze=layer4", "freeze.cache_features=true"])
    with pytest.raises(UserError, match="cache_features=true needs a fixed backbone"):
        train(cfg)


def test_features_are_computed_under_the_trainers_precision(
    make_config, folder_overrides, tmp_path: Path
) -> None:
    features = {}
    cache_dir = tmp_path / "data" / ".cache" / "features"
    for precision in ("32-true", "bf16-mixed"):
        before = set(cache_dir.glob("*.pt"))
        overrides = ["freeze=all", "freeze.cache_features=true", f"trainer.precision={precision}"]
        cfg = make_config(
            [*folder_overrides, *overrides, f"paths.output_dir={tmp_path / precision}"]
        )
        train(cfg)
        (new,) = set(cache_dir.glob("*.pt")) - before  # a cache of its own
        features[precision] = torch.load(new, weights_only=True)["train_features"]
    bf16 = features["bf16-mixed"]
    assert torch.equal(bf16, bf16.bfloat16().float())  # the backbone ran under autocast
    full = features["32-true"]
    assert not torch.equal(full, full.bfloat16().float())


def test_the_dropout_before_the_head_applies_to_cached_features_in_training() -> None:
    """EfficientNet drops features (p=0.2) in front of its head; on cached features the module
    does so itself, in training only, as the network would."""
    model = build_classifier([], name="efficientnet_b0", cache_features=True, image_size=32)
    assert model.description.dropout_before_head == (0.2,)
    resnet = build_classifier([], cache_features=True)
    assert resnet.description.dropout_before_head == ()  # ResNet: none
    features = torch.ones(64, 1280)
    torch.manual_seed(0)
    assert (model.train()._dropped(features) == 0).float().mean().item() == pytest.approx(0.2, 0.3)
    assert torch.equal(model.eval()._dropped(features), features)


def test_balanced_classes_are_drawn_from_cached_features(
    stripes_root: Path, tmp_path: Path
) -> None:
    data = CachedFeatureDataModule(images(stripes_root), FeatureCache(tmp_path))
    data.images.balance_classes = True
    data.images.setup("fit")
    count = len(data.images.train_samples)
    data._datasets = (TensorDataset(torch.zeros(count, 4), torch.zeros(count)),) * 2
    assert isinstance(data.train_dataloader().sampler, WeightedRandomSampler)


def test_cached_augmented_views_differ_and_each_epoch_draws_among_them(
    stripes_root: Path, tmp_path: Path
) -> None:
    """`freeze.cached_views=3`: three augmented views per training image, computed once; each
    access draws one of them, so two epochs see different views of the same image."""
    cache = FeatureCache(tmp_path)
    model = build_classifier([], cache_features=True, seed=0)
    torch.manual_seed(0)
    train_views, val = cached_features(images(stripes_root), model, cache, views=3)
    centre, centre_val = cached_features(images(stripes_root), model, cache)
    assert cache.computed == 2  # the views are a cache of their own
    assert torch.equal(val.tensors[0], centre_val.tensors[0])  # validation: center crops
    views = train_views.views
    assert views.shape == (3, *centre.tensors[0].shape)
    assert torch.equal(train_views.labels, centre.tensors[1])
    assert not torch.allclose(views[0], views[1])  # augmented anew in each pass
    assert not torch.allclose(views[0], centre.tensors[0])  # not the center crop

    def epoch() -> torch.Tensor:
        return torch.stack([train_views[index][0] for index in range(len(train_views))])

    first, second = epoch(), epoch()
    assert not torch.equal(first, second)
    for drawn in (first, second):  # every served feature is one of its image's views
        matches = (views == drawn.unsqueeze(0)).all(dim=-1)  # [views, images]
        assert matches.any(dim=0).all()


def test_training_on_cached_views(make_config, folder_overrides, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO)
    overrides = ["freeze=all", "freeze.cache_features=true", "freeze.cached_views=2"]
    assert train(make_config([*folder_overrides, *overrides])) is not None
    assert "the features of 2 augmented views of each image" in caplog.text
    (stored,) = (tmp_path / "data" / ".cache" / "features").glob("*.pt")
    views = torch.load(stored, weights_only=True)["train_views"]
    assert views.shape[0] == 2 and not torch.equal(views[0], views[1])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["freeze=all", "freeze.cache_features=false", "freeze.cached_views=2"],
            "needs freeze.cache_features=true",
        ),
        (
            ["freeze=all", "freeze.cache_features=true", "freeze.cached_views=2",
             "data.augment.enabled=false"],
            "would cache the same center crop",
        ),
        (["freeze=all", "freeze.cache_features=true", "freeze.cached_views=-1"], "cached_views"),
    ],
)  # fmt: skip
def test_cached_views_are_refused_where_they_cannot_work(
    make_config, folder_overrides, overrides: list[str], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        train(make_config([*folder_overrides, *overrides]))


def test_the_fixed_feature_extractor_caches_by_default_but_not_the_tutorial_preset(
    make_config, folder_overrides
) -> None:
    cfg = make_config([*folder_overrides, "freeze=all"])
    assert isinstance(build_datamodule(cfg), CachedFeatureDataModule)
    assert cfg.freeze.cached_views == 0
    tutorial = make_config([*folder_overrides, "experiment=tutorial_feature_extractor"])
    assert tutorial.freeze.trainable == [] and not tutorial.freeze.cache_features
    assert isinstance(build_datamodule(tutorial), ImageFolderDataModule)
    message = r"needs a fixed backbone.*or set freeze.cache_features=false"
    with pytest.raises(UserError, match=message):
        train(make_config([*folder_overrides, "freeze=all", "freeze.train_bn=true"]))
    assert not make_config([*folder_overrides, "experiment=modern"]).freeze.cache_features


def test_one_process_computes_the_features_while_the_others_wait(
    stripes_root: Path, tmp_path: Path
) -> None:
    """Process 0 builds the cache on the shared file system; process 1 (`wait_s`) reads what
    process 0 wrote and computes nothing, or after `wait_s` names the file it waited for."""
    model = build_classifier([], cache_features=True, seed=0)
    waiting, building = FeatureCache(tmp_path), FeatureCache(tmp_path)
    with pytest.raises(UserError, match=r"waited 0 s for the cached features .*\.pt"):
        cached_features(images(stripes_root), model, waiting, wait_s=0.3)
    assert waiting.computed == 0

    result: list = []
    waiter = threading.Thread(
        target=lambda: result.append(
            cached_features(images(stripes_root), model, waiting, wait_s=60)
        )
    )
    waiter.start()
    time.sleep(0.5)
    _, built_val = cached_features(images(stripes_root), model, building)
    waiter.join(timeout=60)
    ((_, waited_val),) = result
    assert (waiting.computed, building.computed) == (0, 1)
    assert torch.equal(waited_val.tensors[0], built_val.tensors[0])
