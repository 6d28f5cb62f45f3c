"""Each package states its purpose and public API in its __init__.py, and the API is there."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "src.utils",
    "src.data",
    "src.data.sources",
    "src.finetuning",
    "src.models",
    "src.config",
    "src.evaluation",
    "src.callbacks",
    "src.sweeps",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_package_face_lists_names_that_exist(name: str) -> None:
    package = importlib.import_module(name)
    assert package.__doc__ and len(package.__doc__.strip()) > 40
    assert package.__all__
    for public in package.__all__:
        assert getattr(package, public) is not None, f"{name}.{public}"
