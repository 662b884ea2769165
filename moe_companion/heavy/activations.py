"""Capture the input activations of the MLP's up projection with forward pre-hooks.

Supported layouts (found by module name, so any model that follows them works):

================  ===========================================  ============================
family            module whose *input* is captured               example models
================  ===========================================  ============================
Llama-style       ``layers.<i>.mlp.up_proj`` (or ``gate_proj``)  Llama-2/3, Mistral, Qwen
BERT-style        ``layer.<i>.intermediate.dense``               BERT, MiniLM
T5-style          ``block.<i>.layer.<j>.DenseReluDense.wi``      T5 (``wi_1``/``wi_0`` if gated)
================  ===========================================  ============================

In Llama ``up_proj`` and ``gate_proj`` read the same tensor (the output of
``post_attention_layernorm``); in BERT it is the output of the attention block's LayerNorm; in T5
the output of the FFN sub-layer's RMS norm.  The hook records exactly the tensor that enters the
projection (tests compare it with a manual computation).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from .. import _validate as v

__all__ = ["capture_mlp_inputs", "find_mlp_inputs"]

_LLAMA = re.compile(r"(?:^|\.)layers\.(\d+)\.mlp\.(up_proj|gate_proj)$")
_BERT = re.compile(r"(?:^|\.)layer\.(\d+)\.intermediate\.dense$")
_T5 = re.compile(r"(?:^|\.)(encoder|decoder)\.block\.(\d+)\.layer\.\d+\.DenseReluDense\.(wi|wi_0|wi_1)$")


def find_mlp_inputs(model, projection: str = "up_proj", stack: str = "encoder") -> dict[int, object]:
    """Map layer index -> the linear module whose input is the MLP input.

    Parameters
    ----------
    model : torch.nn.Module
        A transformers model (or any module with the names of the table above).
    projection : {"up_proj", "gate_proj"}
        Which Llama projection (same input tensor); for T5 ``up_proj`` means ``wi_1`` when the FFN
        is gated (``wi_0`` for ``gate_proj``) and ``wi`` otherwise; BERT has one (``intermediate.dense``).
    stack : {"encoder", "decoder"}
        For encoder-decoder (T5) models, which stack.

    Raises
    ------
    ValueError
        If no supported MLP layout is found.
    """
    v.check_choice(projection, "projection", ("up_proj", "gate_proj"))
    v.check_choice(stack, "stack", ("encoder", "decoder"))
    llama, bert, t5 = {}, {}, {}
    for name, module in model.named_modules():
        if (m := _LLAMA.search(name)) and m.group(2) == projection:
            llama[int(m.group(1))] = module
        elif m := _BERT.search(name):
            bert[int(m.group(1))] = module
        elif (m := _T5.search(name)) and m.group(1) == stack:
            t5.setdefault(int(m.group(2)), {})[m.group(3)] = module
    if llama:
        return dict(sorted(llama.items()))
    if bert:
        if projection == "gate_proj":
            raise ValueError(
                "projection must be 'up_proj' for a BERT-style MLP (intermediate.dense, no gate), got 'gate_proj'"
            )
        return dict(sorted(bert.items()))
    if t5:
        want = "wi_1" if projection == "up_proj" else "wi_0"
        return {i: mods.get(want, mods.get("wi")) for i, mods in sorted(t5.items())}
    raise ValueError(
        f"model has no supported MLP layout (Llama up_proj, BERT intermediate.dense, T5 wi): {type(model).__name__}"
    )


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
        See :func:`find_mlp_inputs`.
    input_ids : torch.LongTensor, shape (n_seq, seq_len)
        Token ids (e.g. from :func:`moe_companion.heavy.data.token_stream`); no padding.
    layers : iterable of int, optional
        Layer indices to capture (default: all).
    projection, stack : str
        See :func:`find_mlp_inputs`.
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

    modules = find_mlp_inputs(model, projection, stack)
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
