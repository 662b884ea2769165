"""Device selection of the heavy chapters (moe_companion.heavy.device)."""

from __future__ import annotations

import pytest
import torch

from moe_companion.heavy.device import select_device


def test_cpu_fallback_prints_a_notice(monkeypatch, capsys):
    monkeypatch.delenv("MOE_COMPANION_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    device, dtype = select_device()
    assert device.type == "cpu" and dtype == torch.float32
    assert "Notice: running on CPU" in capsys.readouterr().out


def test_cuda_is_chosen_when_available(monkeypatch, capsys):
    monkeypatch.delenv("MOE_COMPANION_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "FakeGPU")
    device, dtype = select_device()
    assert device.type == "cuda" and dtype == torch.bfloat16
    assert "FakeGPU" in capsys.readouterr().out
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert select_device(verbose=False)[1] == torch.float16
    monkeypatch.setenv("MOE_COMPANION_DEVICE", "cpu")
    assert select_device(verbose=False) == (torch.device("cpu"), torch.float32)


def test_bad_override_is_named(monkeypatch):
    monkeypatch.setenv("MOE_COMPANION_DEVICE", "tpu")
    with pytest.raises(ValueError, match="MOE_COMPANION_DEVICE"):
        select_device()
