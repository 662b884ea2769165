"""The one mean-pooling sentence encoder of the heavy chapters (probes' activations, MoEfication's head).

:func:`encode_mean_pooled` batches texts by length (less padding), runs a Hugging Face encoder and averages
one layer's hidden states over the non-padding tokens (:func:`mean_pool`), optionally L2-normalised.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import _validate as v

__all__ = ["encode_mean_pooled", "mean_pool"]


def mean_pool(hidden, mask):
    """Mean of ``hidden`` (B, T, d) over the tokens where ``mask`` (B, T) is 1 (torch tensors)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


def encode_mean_pooled(
    texts: Sequence[str],
    model,
    tokenizer,
    *,
    layer: int | None = None,
    batch_size: int = 64,
    max_length: int = 64,
    token_type_ids: bool | None = None,
    normalize: bool = False,
    progress: bool = False,
    desc: str = "encoding batches",
) -> np.ndarray:
    """Mean-pooled hidden states, shape (n, d), float32, in the order of ``texts``.

    Parameters
    ----------
    layer : int or None
        Index into ``hidden_states`` (0 = embeddings, -1 = last layer); ``None``: ``last_hidden_state``.
    token_type_ids : bool or None
        Ask the tokenizer for them (False for T5); ``None``: the tokenizer's default.
    normalize : bool
        L2-normalise every embedding.
    """
    import torch
    from tqdm import (
        tqdm,  # text bars on stderr (widget bars would be dead on the static site)
    )

    batch_size = v.check_int(batch_size, "batch_size", lower=1)
    max_length = v.check_int(max_length, "max_length", lower=2)
    texts = list(texts)
    if not texts:
        raise ValueError("texts must not be empty")
    device = next(model.parameters()).device
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = None
    kw = {} if token_type_ids is None else {"return_token_type_ids": token_type_ids}
    with torch.inference_mode():
        for i in tqdm(range(0, len(texts), batch_size), desc=desc, disable=not progress, mininterval=2.0, leave=False):
            idx = order[i : i + batch_size]
            enc = tokenizer(
                [texts[j] for j in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt", **kw
            )
            enc = {k: t.to(device) for k, t in enc.items()}
            if layer is None:
                hs = model(**enc).last_hidden_state
            else:
                hs = model(**enc, output_hidden_states=True).hidden_states[layer]
            emb = mean_pool(hs, enc["attention_mask"])
            if normalize:
                emb = emb / emb.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            emb = emb.float().cpu().numpy()
            if out is None:
                out = np.zeros((len(texts), emb.shape[1]), dtype=np.float32)
            out[idx] = emb
    return out
