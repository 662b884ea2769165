"""Capture the input activations of the MLP's up projection with forward pre-hooks.

The MLP blocks are those of :func:`moe_companion.heavy.ffn.find_ffns` (Llama-, BERT- and T5-style); the
captured tensor is the input of the block's ``up`` projection (Llama ``up_proj``, BERT
``intermediate.dense``, T5 ``wi``, or ``wi_1`` when gated) or, equivalently, of its ``gate``
(Llama ``gate_proj``, gated T5 ``wi_0``).

In Llama ``up_proj`` and ``gate_proj`` read the same tensor (the output of
``post_attention_layernorm``); in BERT it is the output of the attention block's LayerNorm; in T5
the output of the FFN sub-layer's RMS norm.  The hook records exactly the tensor that enters the
projection (tests compare it with a manual computation).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .. import _validate as v
from .ffn import find_ffns

__all__ = ["capture_mlp_inputs"]


def capture_mlp_inputs(
    model,
    input_ids,
    *,
    layers: Iterable[int] | None = None,
    projection: str = "up_proj",
    stack: str = "encoder",
    batch_size: int = 4,
    progress: bool = True,
    desc: str = "forward",
) -> dict[int, np.ndarray]:
    """Run ``input_ids`` through ``model`` and return the MLP-input activations of each layer.

    Parameters
    ----------
    model : torch.nn.Module
        A model with a layout of :func:`moe_companion.heavy.ffn.find_ffns`.
    input_ids : torch.LongTensor, shape (n_seq, seq_len)
        Token ids (e.g. from :func:`moe_companion.heavy.data.token_stream`); no padding.
    layers : iterable of int, optional
        Layer indices to capture (default: all).
    projection : {"up_proj", "gate_proj"}
        Which projection's input (the same tensor); ``"gate_proj"`` needs a gated MLP (Llama, gated T5).
    stack : {"encoder", "decoder"}
        For encoder-decoder (T5) models, which stack (ignored for single-stack models).
    batch_size : int
        Sequences per forward pass.
    progress : bool
        Show a tqdm bar over batches.

    Returns
    -------
    dict int -> ndarray, shape (n_seq * seq_len, d_model), float32
        Token-major activations (sequence by sequence) in the model's input space of the MLP.
    """
    import torch
    from tqdm import tqdm

    modules = {b.layer: b.input_module(projection) for b in find_ffns(model, stack=stack)}
    layers = sorted(modules) if layers is None else [v.check_int(i, "layers[i]", lower=0) for i in layers]
    missing = [i for i in layers if i not in modules]
    if missing:
        raise ValueError(f"layers must be in 0..{max(modules)}, got {missing}")
    batch_size = v.check_int(batch_size, "batch_size", lower=1)
    if input_ids.ndim != 2:
        raise ValueError(f"input_ids must have shape (n_seq, seq_len), got {tuple(input_ids.shape)}")
    store: dict[int, list] = {i: [] for i in layers}

    def make_hook(i):
        def hook(module, args, kwargs=None):
            x = args[0] if args else kwargs["input"]
            store[i].append(x.detach().to(torch.float32).reshape(-1, x.shape[-1]).cpu().numpy())

        return hook

    handles = [modules[i].register_forward_pre_hook(make_hook(i)) for i in layers]
    device = next(model.parameters()).device
    runner = model
    if getattr(getattr(model, "config", None), "is_encoder_decoder", False):
        runner = model.get_encoder() if stack == "encoder" else model
    try:
        with torch.inference_mode():
            for start in tqdm(
                range(0, input_ids.shape[0], batch_size), desc=desc, disable=not progress, mininterval=2.0
            ):
                ids = input_ids[start : start + batch_size].to(device)
                if runner is model and stack == "decoder":
                    runner(input_ids=ids, decoder_input_ids=ids)
                else:
                    runner(input_ids=ids)
    finally:
        for h in handles:
            h.remove()
    return {i: np.concatenate(store[i], axis=0) for i in layers}
