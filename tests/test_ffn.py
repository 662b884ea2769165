"""The one FFN finder (moe_companion.heavy.ffn) on tiny random models built from configs (nothing downloaded)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from moe_companion.heavy.data import tiny_random_llama
from moe_companion.heavy.ffn import FFNBlock, find_ffns

torch.set_num_threads(1)


def _bert(n_layers=3):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=n_layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    return BertModel(cfg).eval()


def _t5(gated=False, encoder_only=False):
    from transformers import T5Config, T5EncoderModel, T5ForConditionalGeneration

    torch.manual_seed(0)
    cfg = T5Config(
        vocab_size=50,
        d_model=16,
        d_kv=4,
        d_ff=32,
        num_layers=2,
        num_decoder_layers=3,
        num_heads=4,
        feed_forward_proj="gated-gelu" if gated else "relu",
        decoder_start_token_id=0,
    )
    return (T5EncoderModel if encoder_only else T5ForConditionalGeneration)(cfg).eval()


def test_llama_blocks_are_the_models_own_modules_in_layer_order():
    model = tiny_random_llama(50, num_layers=3, seed=0)
    blocks = find_ffns(model)
    assert [b.layer for b in blocks] == [0, 1, 2]
    for i, b in enumerate(blocks):
        layer = model.model.layers[i]
        assert (b.kind, b.stack, b.path, b.moefied) == ("llama", None, f"model.layers.{i}", False)
        assert b.parent is layer
        assert b.gate is layer.mlp.gate_proj and b.up is layer.mlp.up_proj and b.down is layer.mlp.down_proj
        assert b.activation is layer.mlp.act_fn
        assert b.input_module("up_proj") is layer.mlp.up_proj and b.input_module("gate_proj") is layer.mlp.gate_proj
    # the parts compose to the MLP
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(0))
    b, mlp = blocks[1], model.model.layers[1].mlp
    with torch.no_grad():
        torch.testing.assert_close(b.down(b.activation(b.gate(x)) * b.up(x)), mlp(x))
    # the stack filter does not apply to a single-stack model
    assert [b.path for b in find_ffns(model, stack="decoder")] == [b.path for b in blocks]


def test_bert_blocks():
    model = _bert(3)
    blocks = find_ffns(model)
    assert [(b.layer, b.path) for b in blocks] == [(i, f"encoder.layer.{i}") for i in range(3)]
    for i, b in enumerate(blocks):
        layer = model.encoder.layer[i]
        assert b.kind == "bert" and b.stack is None and b.gate is None and not b.moefied
        assert b.parent is layer and b.up is layer.intermediate.dense and b.down is layer.output.dense
        assert b.activation is layer.intermediate.intermediate_act_fn
    with pytest.raises(ValueError, match="projection.*no gate"):
        blocks[0].input_module("gate_proj")
    with pytest.raises(ValueError, match="projection"):
        blocks[0].input_module("down_proj")


@pytest.mark.parametrize("gated", [False, True])
def test_t5_blocks_both_stacks_and_the_filter(gated):
    model = _t5(gated=gated)
    blocks = find_ffns(model)
    assert [(b.stack, b.layer) for b in blocks] == [("encoder", 0), ("encoder", 1)] + [("decoder", i) for i in range(3)]
    kind = "t5-gated" if gated else "t5"
    for b in blocks:
        stack = model.encoder if b.stack == "encoder" else model.decoder
        ff = stack.block[b.layer].layer[-1]  # T5LayerFF is the block's last sub-layer
        assert b.kind == kind and b.parent is ff and not b.moefied
        assert b.path == f"{b.stack}.block.{b.layer}.layer.{1 if b.stack == 'encoder' else 2}"
        d = ff.DenseReluDense
        if gated:
            assert b.gate is d.wi_0 and b.up is d.wi_1 and b.down is d.wo
        else:
            assert b.gate is None and b.up is d.wi and b.down is d.wo
        assert b.activation is d.act
    enc = find_ffns(model, stack="encoder")
    dec = find_ffns(model, stack="decoder")
    assert [b.path for b in enc] == [b.path for b in blocks[:2]]
    assert [b.path for b in dec] == [b.path for b in blocks[2:]]
    if gated:  # gate = wi_0 (through the activation), up = wi_1: the parts compose to the FFN
        b = blocks[0]
        x = torch.randn(4, 16, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            torch.testing.assert_close(b.down(b.activation(b.gate(x)) * b.up(x)), b.parent.DenseReluDense(x))


def test_stack_errors_name_the_parameter():
    with pytest.raises(ValueError, match="stack must be one of"):
        find_ffns(_t5(), stack="middle")
    enc_only = _t5(encoder_only=True)
    assert [b.stack for b in find_ffns(enc_only)] == ["encoder", "encoder"]
    with pytest.raises(ValueError, match=r"stack must be one of the model's stacks \['encoder'\], got 'decoder'"):
        find_ffns(enc_only, stack="decoder")


def test_moefied_blocks_are_recognised():
    from moe_companion.heavy import moefication as mf

    for model in (_bert(2), _t5()):
        before = find_ffns(model)
        labels = {b.path: np.repeat(np.arange(4), 8) for b in before}
        moes = mf.moefy(model, labels, k=4)
        after = find_ffns(model)
        assert [b.path for b in after] == [b.path for b in before]
        for b, b0, moe in zip(after, before, moes):
            assert b.moefied and b.moe is moe and b.kind == b0.kind and b.parent is b0.parent
            assert b.gate is None and b.up is None and b.down is None and b.activation is moe.activation
        with pytest.raises(ValueError, match="projection.*MoEfied"):
            after[0].input_module()
        assert set(mf.expert_labels_of(model)) == set(labels)
        with pytest.raises(ValueError, match="already MoEfied"):
            mf.moefy(model, labels, k=4)


def test_callers_refuse_the_kinds_they_do_not_support():
    from moe_companion.heavy import moefication as mf
    from moe_companion.heavy.teal import MLPParts

    with pytest.raises(ValueError, match="model has a gated T5 FFN at 'encoder.block.0.layer.1'"):
        mf.cluster_model(_t5(gated=True), 4)
    with pytest.raises(ValueError, match="model has a gated Llama-style MLP"):
        mf.moefy(tiny_random_llama(50), {}, k=1)
    with pytest.raises(ValueError, match="block must be a Llama- or BERT-style MLP"):
        MLPParts.of(find_ffns(_t5())[0])
    with pytest.raises(ValueError, match="model must be MoEfied"):
        mf.expert_labels_of(_bert(1))


def test_unsupported_model_names_its_type():
    with pytest.raises(ValueError, match="model Sequential has no supported FFN layout"):
        find_ffns(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_block_is_frozen():
    b = find_ffns(_bert(1))[0]
    assert isinstance(b, FFNBlock)
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.layer = 3
