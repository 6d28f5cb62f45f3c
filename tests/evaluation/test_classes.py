"""A labelled folder's classes matched to the checkpoint's by name."""

from __future__ import annotations

import pytest

from src.evaluation.classes import label_mapping
from src.utils.errors import UserError

MODEL = ["cat", "dog", "fox"]


def test_same_classes_map_by_name() -> None:
    assert label_mapping(["cat", "dog", "fox"], MODEL, subset=False) == [0, 1, 2]
    assert label_mapping(["dog", "fox"], MODEL, subset=True) == [1, 2]


def test_a_class_the_model_does_not_know_is_refused_naming_both_lists() -> None:
    with pytest.raises(UserError) as info:
        label_mapping(["cat", "dog", "wolf"], MODEL, subset=True)
    message = str(info.value)
    assert "['cat', 'dog', 'wolf']" in message and "['cat', 'dog', 'fox']" in message
    assert "class_subset" not in message  # no option makes an unknown class scorable


def test_a_missing_model_class_is_refused_unless_a_subset_is_allowed() -> None:
    with pytest.raises(UserError, match=r"\['cat', 'dog'\].*\['cat', 'dog', 'fox'\].*class_subset"):
        label_mapping(["cat", "dog"], MODEL, subset=False)
