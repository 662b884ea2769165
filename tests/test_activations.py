"""Forward hooks on the MLP input (moe_companion.heavy.activations) vs manual computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moe_companion.heavy.activations import capture_mlp_inputs
from moe_companion.heavy.data import tiny_random_llama

torch.set_num_threads(1)


def _tiny_bert(seed=0):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    return BertModel(cfg).eval()


def _tiny_t5(seed=0, gated=False):
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    cfg = T5Config(
        vocab_size=50,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        feed_forward_proj="gated-gelu" if gated else "relu",
        decoder_start_token_id=0,
    )
    return T5ForConditionalGeneration(cfg).eval()


def _ids(n_seq, seq_len, vocab, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(1, vocab, size=(n_seq, seq_len)))


def test_llama_hook_equals_manual_single_token_computation():
    # With one token per sequence attention is o_proj(v_proj(.)) exactly, so the MLP input of layer 0 is
    # post_attention_layernorm(h + o_proj(v_proj(input_layernorm(h)))) with h the token embedding.
    model = tiny_random_llama(50, seed=1)
    ids = _ids(6, 1, 50)
    acts = capture_mlp_inputs(model, ids, layers=[0, 1], batch_size=4, progress=False)
    layer = model.model.layers[0]
    with torch.no_grad():
        h = model.model.embed_tokens(ids)
        h = h + layer.self_attn.o_proj(layer.self_attn.v_proj(layer.input_layernorm(h)))
        manual = layer.post_attention_layernorm(h).reshape(-1, 64).numpy()
    assert acts[0].shape == (6, 64)
    np.testing.assert_allclose(acts[0], manual, rtol=1e-5, atol=1e-6)
    assert not np.allclose(acts[0], acts[1], atol=1e-3)  # a different layer gives a different tensor


def test_llama_hook_is_the_projection_input_for_long_sequences():
    # up_proj is injective (64 -> 128), so equal outputs mean equal inputs: compare up_proj(captured)
    # with the output recorded by an independent forward hook on the same module.
    model = tiny_random_llama(50, seed=2)
    ids = _ids(3, 12, 50, seed=3)
    outs = []
    h = model.model.layers[1].mlp.up_proj.register_forward_hook(lambda m, a, o: outs.append(o.detach()))
    try:
        acts = capture_mlp_inputs(model, ids, layers=[1], batch_size=2, progress=False)
    finally:
        h.remove()
    rec = torch.cat([o.reshape(-1, o.shape[-1]) for o in outs]).numpy()
    with torch.no_grad():
        again = model.model.layers[1].mlp.up_proj(torch.from_numpy(acts[1])).numpy()
    assert acts[1].shape == (36, 64)
    np.testing.assert_allclose(again, rec, rtol=1e-5, atol=1e-6)


def test_gate_proj_and_up_proj_read_the_same_tensor():
    model = tiny_random_llama(50, seed=4)
    ids = _ids(2, 8, 50)
    up = capture_mlp_inputs(model, ids, projection="up_proj", progress=False)
    gate = capture_mlp_inputs(model, ids, projection="gate_proj", progress=False)
    for i in up:
        np.testing.assert_array_equal(up[i], gate[i])


def test_bert_hook_equals_manual_single_token_computation():
    model = _tiny_bert()
    ids = _ids(5, 1, 50)
    acts = capture_mlp_inputs(model, ids, layers=[0], progress=False)
    lay = model.encoder.layer[0]
    with torch.no_grad():
        h = model.embeddings(input_ids=ids)
        att = lay.attention.self
        manual = lay.attention.output.LayerNorm(lay.attention.output.dense(att.value(h)) + h)
    np.testing.assert_allclose(acts[0], manual.reshape(-1, 32).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gated", [False, True])
def test_t5_encoder_hook_equals_manual_ffn_norm(gated):
    model = _tiny_t5(gated=gated)
    ids = _ids(2, 7, 50)
    acts = capture_mlp_inputs(model, ids, layers=[0], progress=False)
    enc = model.get_encoder()
    with torch.no_grad():
        block = enc.block[0]  # block 0 owns the relative position bias, so it can be called alone
        attn = block.layer[0](enc.embed_tokens(ids))[0]  # after self-attention, residual included
        manual = block.layer[1].layer_norm(attn)
    np.testing.assert_allclose(acts[0], manual.reshape(-1, 32).numpy(), rtol=1e-4, atol=1e-5)


def test_bad_inputs_are_named():
    model = tiny_random_llama(50)
    with pytest.raises(ValueError, match="layers"):
        capture_mlp_inputs(model, _ids(1, 4, 50), layers=[7], progress=False)
    with pytest.raises(ValueError, match="projection"):
        capture_mlp_inputs(model, _ids(1, 4, 50), projection="down_proj", progress=False)
    with pytest.raises(ValueError, match="input_ids"):
        capture_mlp_inputs(model, _ids(1, 4, 50)[0], progress=False)
    with pytest.raises(ValueError, match="projection"):  # BERT has no gate projection
        capture_mlp_inputs(_tiny_bert(), _ids(1, 4, 50), projection="gate_proj", progress=False)
    with pytest.raises(ValueError, match="stack"):
        capture_mlp_inputs(_tiny_t5(), _ids(1, 4, 50), stack="middle", progress=False)
    with pytest.raises(ValueError, match="Sequential has no supported FFN layout"):
        capture_mlp_inputs(torch.nn.Sequential(torch.nn.Linear(2, 2)), _ids(1, 4, 50), progress=False)
