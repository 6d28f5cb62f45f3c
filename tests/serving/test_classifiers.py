"""Inference precision: mixed on a GPU (bfloat16 where supported), full on the CPU."""

from __future__ import annotations

import warnings
from contextlib import nullcontext

import pytest
import torch

from src.serving.classifiers import inference_autocast


def test_the_cpu_predicts_in_full_precision() -> None:
    assert isinstance(inference_autocast(torch.device("cpu")), nullcontext)


@pytest.mark.parametrize(("bf16", "dtype"), [(True, torch.bfloat16), (False, torch.float16)])
def test_a_gpu_predicts_under_autocast(monkeypatch, bf16: bool, dtype: torch.dtype) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
    with warnings.catch_warnings():  # no CUDA here: torch warns that it would disable it
        warnings.simplefilter("ignore", UserWarning)
        context = inference_autocast(torch.device("cuda"))
    assert isinstance(context, torch.autocast)
    assert (context.device, context.fast_dtype) == ("cuda", dtype)
