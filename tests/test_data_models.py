"""Offline prose/MiniLM loaders and the paper-profile loaders of moe_companion.heavy.data (issue 6).

The paper-profile code paths (AutoModelForCausalLM.from_pretrained, WikiText-2 via datasets) are
exercised on a tiny random LlamaConfig model saved to a temporary folder and on a stubbed dataset:
nothing is downloaded.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

from moe_companion.heavy import data
from moe_companion.heavy.activations import capture_mlp_inputs

torch.set_num_threads(1)


def test_prose_text_is_real_deterministic_english():
    text = data.load_prose_text()
    assert len(text) > 300_000 and text == data.load_prose_text()
    words = text.lower().split()
    assert words.count("the") > 2000
    assert data.load_prose_text(100) == text[:100]
    with pytest.raises(ValueError, match="n_chars"):
        data.load_prose_text(0)


@pytest.fixture(scope="module")
def minilm():
    return data.load_minilm()


def test_minilm_loads_offline_with_real_weights(minilm):
    import os

    model, tok = minilm
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert type(model).__name__ == "BertModel" and model.config.num_hidden_layers == 6
    assert model.config.hidden_size == 384 and model.config.intermediate_size == 1536
    # real (trained) weights: semantically close sentences are closer than unrelated ones
    sents = ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply."]
    enc = tok(sents, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = model(**enc).last_hidden_state
    m = enc["attention_mask"][..., None]
    e = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
    assert float(e[0] @ e[1]) > float(e[0] @ e[2]) + 0.3


def test_token_stream_shapes_offsets_and_errors(minilm):
    _, tok = minilm
    text = data.load_prose_text(50_000)
    ids = data.token_stream(tok, text, 512, 128)
    assert ids.shape == (4, 128) and ids.dtype == torch.long
    later = data.token_stream(tok, text, 256, 128, offset=256)
    assert torch.equal(later.reshape(-1), ids.reshape(-1)[256:])
    with pytest.raises(ValueError, match="n_tokens must be a multiple"):
        data.token_stream(tok, text, 500, 128)
    with pytest.raises(ValueError, match="n_tokens must be <="):
        data.token_stream(tok, "short text", 128, 128)


def test_paper_loader_on_a_tiny_random_llama_saved_locally(tmp_path, minilm):
    _, tok = minilm
    model = data.tiny_random_llama(len(tok), seed=3)
    model.save_pretrained(tmp_path / "tiny")
    tok.save_pretrained(tmp_path / "tiny")
    loaded, tok2 = data.load_pretrained_causal_lm(str(tmp_path / "tiny"), dtype=torch.float32)
    assert type(loaded).__name__ == "LlamaForCausalLM" and not loaded.training
    ids = data.token_stream(tok2, data.load_prose_text(20_000), 64, 32)
    a = capture_mlp_inputs(model, ids, progress=False)
    b = capture_mlp_inputs(loaded, ids, progress=False)
    for i in a:
        np.testing.assert_array_equal(a[i], b[i])


def test_load_model_dispatch_smoke_profile():
    model, tok = data.load_model(data.TINY_LLAMA_NAME, seed=0)
    again, _ = data.load_model(data.TINY_LLAMA_NAME, seed=0)
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.vocab_size == len(tok)
    for p, q in zip(model.parameters(), again.parameters()):
        assert torch.equal(p, q)  # seeded
    with pytest.raises(ValueError, match="model"):
        data.load_model("")


def test_wikitext_loader_joins_the_validation_split(monkeypatch):
    calls = []

    def fake_load_dataset(path, name, split):
        calls.append((path, name, split))
        return {"text": [" = Title = \n", "First line .\n", ""]}

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=fake_load_dataset))
    text = data.load_text("wikitext-2-raw-v1")
    assert calls == [("wikitext", "wikitext-2-raw-v1", "validation")]
    assert text == " = Title = \n\n\nFirst line .\n\n\n"
    with pytest.raises(ValueError, match="text"):
        data.load_text("c4")
    with pytest.raises(ValueError, match="split"):
        data.wikitext2_text("dev")
