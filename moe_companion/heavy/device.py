"""Device and dtype selection for the heavy chapters."""

from __future__ import annotations

import os

__all__ = ["select_device"]


def select_device(verbose: bool = True):
    """Return ``(torch.device, torch.dtype)``: CUDA when available, else CPU.

    On CUDA the dtype is ``bfloat16`` when the GPU supports it, else ``float16``; on CPU it is
    ``float32`` and a notice is printed.  Setting the environment variable
    ``MOE_COMPANION_DEVICE=cpu`` forces the CPU even when a GPU is present.

    Parameters
    ----------
    verbose : bool
        Print which device and dtype were chosen.
    """
    import torch

    forced = os.environ.get("MOE_COMPANION_DEVICE", "").strip().lower()
    if forced not in ("", "cpu", "cuda"):
        raise ValueError(f"MOE_COMPANION_DEVICE must be 'cpu' or 'cuda', got {forced!r}")
    if forced == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("MOE_COMPANION_DEVICE=cuda but torch sees no CUDA device")
    if forced != "cpu" and torch.cuda.is_available():
        device = torch.device("cuda")
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if verbose:
            print(f"Using CUDA ({torch.cuda.get_device_name(0)}) with {dtype}.")
        return device, dtype
    if verbose:
        why = "forced by MOE_COMPANION_DEVICE=cpu" if forced == "cpu" else "no CUDA device found"
        print(f"Notice: running on CPU in float32 ({why}); the paper profile needs a GPU.")
    return torch.device("cpu"), torch.float32
