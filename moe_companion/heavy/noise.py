"""Word and character noise for sentences (Section 5 and Appendix B.2 of the paper), via nlpaug.

The paper perturbs SST-2 sentences following Pan et al. (2024) with two nlpaug augmenters:

* **word noise** -- ``RandomWordAug(action="swap")``: "at least one and a maximum of two swaps
  [of adjacent words] per sentence";
* **character noise** -- ``KeyboardAug``: "one character within each of two randomly chosen words
  is replaced with a keyboard error".

What nlpaug actually does, and the two word-noise protocols
----------------------------------------------------------
nlpaug 1.1.11 does *not* draw the number of edits between ``aug_min`` and ``aug_max``: it uses
``clamp(ceil(aug_p * n_tokens), aug_min, aug_max)``, i.e. the count follows from the sentence
length (``aug_p=0.3`` by default).  With the paper's ``aug_min=1, aug_max=2`` that is one swap for
sentences of at most 3 tokens and two swaps otherwise; two swaps can undo each other
(``a b -> b a -> a b``), so the *effective* number of swaps (:func:`swap_distance`) is 0, 1 or 2.

* ``word_protocol="nlpaug"`` (default; the paper's protocol, App. B.2): plain
  ``RandomWordAug(action="swap", aug_min=1, aug_max=2)`` with nlpaug's default ``aug_p``; nothing
  is redrawn.  :func:`word_count_distribution` measures what it gives on a set of sentences.
* ``word_protocol="explicit"`` (a labelled option, not the paper's protocol): draws ``n_swaps``
  uniformly from ``{1, 2}``, pins ``aug_min = aug_max = n_swaps`` and redraws (from the same seeded
  stream) a draw that leaves the sentence unchanged.  Sentences with fewer than 3 words get one
  swap; one-word sentences cannot be swapped and stay clean (counted as 0 swaps).

* character noise runs ``KeyboardAug(aug_word_min=2, aug_word_max=2, aug_char_min=1,
  aug_char_max=1)``: exactly two distinct words, one keyboard-neighbour substitution each.
  **Short words.**  nlpaug never edits words shorter than ``min_char=4`` characters.  We keep that
  default, but when a sentence has fewer than two such words the eligibility threshold is lowered
  to ``short_min_char=2`` characters for that sentence, so that two words are still hit whenever
  the sentence has two words of length >= 2.  One-character words ("a", "I") are never edited.
  Characters without a keyboard neighbour in nlpaug's QWERTY model (emoji, some symbols) are not
  edited; a word made only of those stays unchanged (reported by the returned counts).
  nlpaug's QWERTY table maps ``u`` to ``" t"`` (space + t), which would split a word in two and
  change two characters; we repair that entry to ``y`` (the key it stands for).

Both augmenters split on whitespace and re-join with single spaces (nlpaug's default tokenizer
re-spaces punctuation even when nothing changed, which would make *clean* and *noisy* differ in
more than the noise).  Clean sentences should be whitespace-normalised the same way
(:func:`normalize_space`); the loaders in :mod:`moe_companion.heavy.data` do so.

Determinism
-----------
nlpaug draws from Python's global :mod:`random`.  :func:`add_noise` seeds it per sentence from
``(seed, kind, index)`` and restores the caller's global random state afterwards, so the noisy
version of sentence ``i`` depends only on ``(text_i, kind, seed, i)``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache

from .. import _validate as v

__all__ = [
    "NOISE_TYPES",
    "WORD_PROTOCOLS",
    "add_noise",
    "keyboard_typos",
    "normalize_space",
    "swap_distance",
    "word_count_distribution",
    "word_swap",
    "word_swap_nlpaug",
]

#: Supported noise kinds.
NOISE_TYPES = ("word", "char")
#: Word-noise protocols: the paper's plain nlpaug call, or the explicit 1-or-2 count (an option).
WORD_PROTOCOLS = ("nlpaug", "explicit")

_MAX_TRIES = 25


def normalize_space(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends (the augmenters' tokenisation)."""
    return " ".join(str(text).split())


def _split(text: str) -> list[str]:
    return text.split()


def _join(tokens: Sequence[str]) -> str:
    return " ".join(tokens)


@cache
def _swap_aug(n_swaps: int):
    import nlpaug.augmenter.word as naw

    return naw.RandomWordAug(
        action="swap", aug_min=n_swaps, aug_max=n_swaps, aug_p=1.0, tokenizer=_split, reverse_tokenizer=_join
    )


@cache
def _plain_swap_aug():
    """The paper's call: ``RandomWordAug(action="swap", aug_min=1, aug_max=2)``, default ``aug_p``
    (0.3); whitespace tokenisation so that clean and noisy text differ only by the swaps."""
    import nlpaug.augmenter.word as naw

    return naw.RandomWordAug(action="swap", aug_min=1, aug_max=2, tokenizer=_split, reverse_tokenizer=_join)


@cache
def _keyboard_aug(min_char: int):
    import nlpaug.augmenter.char as nac

    aug = nac.KeyboardAug(
        aug_word_min=2,
        aug_word_max=2,
        aug_word_p=1.0,
        aug_char_min=1,
        aug_char_max=1,
        aug_char_p=1.0,
        min_char=min_char,
        tokenizer=_split,
        reverse_tokenizer=_join,
    )
    _fix_keyboard(aug.model.model)
    return aug


def _fix_keyboard(mapping: dict) -> None:
    """Repair nlpaug 1.1.11's QWERTY table in place: its ``"u"`` lists ``" t"`` (a space + t,
    which splits the word) where ``"y"`` is meant.  Multi-character or blank neighbours are
    dropped and ``y``/``Y`` restored as neighbours of ``u``/``U``."""
    for key, vals in mapping.items():
        clean = [c for c in vals if len(c) == 1 and not c.isspace()]
        if key in ("u", "U"):
            clean += [c for c in ("y", "Y") if c not in clean]
        mapping[key] = clean


@contextmanager
def _seeded_random(seed: int) -> Iterator[None]:
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def _augment(aug, text: str) -> str:
    out = aug.augment(text)
    return out[0] if isinstance(out, list) else out


def word_swap(text: str) -> tuple[str, int]:
    """Swap adjacent words once or twice (count drawn from ``random``); return ``(noisy, n_swaps)``.

    Uses the global :mod:`random` state (seed it, or call :func:`add_noise`).
    """
    text = normalize_space(text)
    tokens = text.split()
    if len(tokens) < 2:
        return text, 0
    n_swaps = random.choice((1, 2))
    if len(tokens) < 3:
        n_swaps = 1
    for _ in range(_MAX_TRIES):
        out = _augment(_swap_aug(n_swaps), text)
        if out != text:
            return out, n_swaps
    return text, 0  # e.g. "ha ha": no swap can change the sentence


def word_swap_nlpaug(text: str) -> tuple[str, int]:
    """The paper's word noise: one plain nlpaug call; return ``(noisy, effective swaps)``.

    The effective count is :func:`swap_distance` between the clean and the noisy words (0 when two
    swaps cancelled).  Uses the global :mod:`random` state (seed it, or call :func:`add_noise`).
    """
    text = normalize_space(text)
    if len(text.split()) < 2:
        return text, 0
    out = _augment(_plain_swap_aug(), text)
    return out, swap_distance(text, out)


def swap_distance(a: str, b: str) -> int:
    """Fewest adjacent swaps that turn the words of ``a`` into those of ``b`` (case-insensitive).

    The number of inversions of the permutation that matches equal words in order (which
    minimises it when words repeat).  Raises ``ValueError`` when ``b`` is not a rearrangement of
    ``a``'s words.
    """
    wa, wb = str(a).lower().split(), str(b).lower().split()
    if sorted(wa) != sorted(wb):
        raise ValueError("b must be a rearrangement of the words of a")
    slots: dict[str, list[int]] = {}
    for i, w in enumerate(wa):
        slots.setdefault(w, []).append(i)
    perm = [slots[w].pop(0) for w in wb]
    return sum(perm[i] > perm[j] for i in range(len(perm)) for j in range(i + 1, len(perm)))


def word_count_distribution(texts: Sequence[str], seeds: Sequence[int], *, word_protocol: str = "nlpaug") -> dict:
    """Measured number of effective adjacent swaps per sentence under :func:`add_noise`.

    Returns
    -------
    dict with ``counts`` ({0: n0, 1: n1, 2: n2, ...} over all sentences and seeds), ``n`` (their
    total), ``shares`` (fractions) and ``n_tokens`` (histogram of sentence lengths in words, as
    ``{"<=3": ..., ">=4": ...}``, the split at which nlpaug's rule switches from one swap to two).
    """
    word_protocol = v.check_choice(word_protocol, "word_protocol", WORD_PROTOCOLS)
    if isinstance(texts, str) or not texts:
        raise ValueError("texts must be a non-empty sequence of strings")
    seeds = [v.check_seed(s, "seeds") for s in seeds]
    if not seeds:
        raise ValueError("seeds must list at least one seed")
    counts: dict[int, int] = {}
    for s in seeds:
        noisy = add_noise(texts, "word", s, word_protocol=word_protocol)
        for clean, out in zip(texts, noisy):
            c = swap_distance(normalize_space(clean), out)
            counts[c] = counts.get(c, 0) + 1
    n = sum(counts.values())
    lengths = [len(normalize_space(t).split()) for t in texts]
    return {
        "counts": dict(sorted(counts.items())),
        "n": n,
        "shares": {c: k / n for c, k in sorted(counts.items())},
        "n_tokens": {"<=3": sum(x <= 3 for x in lengths), ">=4": sum(x >= 4 for x in lengths)},
    }


def keyboard_typos(text: str, min_char: int = 4, short_min_char: int = 2) -> tuple[str, int]:
    """Put one keyboard typo into each of two words; return ``(noisy, n_words_changed)``.

    Words shorter than ``min_char`` are eligible only when fewer than two words reach it; then
    words of at least ``short_min_char`` characters are eligible (see the module notes).
    """
    text = normalize_space(text)
    tokens = text.split()
    threshold = min_char if sum(len(t) >= min_char for t in tokens) >= 2 else short_min_char
    if not any(len(t) >= threshold for t in tokens):
        return text, 0
    out = _augment(_keyboard_aug(threshold), text)
    changed = sum(a != b for a, b in zip(tokens, out.split()))
    return out, changed


def _sentence_seed(seed: int, kind: str, index: int) -> int:
    return (seed * 1_000_003 + index) * 4 + NOISE_TYPES.index(kind) + 1


def add_noise(
    texts: Sequence[str],
    kind: str,
    seed: int,
    *,
    min_char: int = 4,
    short_min_char: int = 2,
    return_counts: bool = False,
    word_protocol: str = "nlpaug",
):
    """Return noisy copies of ``texts`` (word swaps or keyboard typos), deterministic per seed.

    Parameters
    ----------
    texts : sequence of str, length n
        Clean sentences (whitespace is normalised in the output).
    kind : {"word", "char"}
        ``"word"``: swaps of adjacent words (see ``word_protocol``); ``"char"``: one keyboard
        error in each of two words.
    seed : int >= 0
        Noise seed; sentence ``i`` is perturbed from ``random.seed(f(seed, kind, i))``.
    min_char, short_min_char : int
        Word-length thresholds of the character noise (see the module notes).
    return_counts : bool
        Also return the per-sentence edit counts (effective swaps, or words changed).
    word_protocol : {"nlpaug", "explicit"}
        ``"nlpaug"``: the paper's plain ``RandomWordAug(aug_min=1, aug_max=2)`` call;
        ``"explicit"``: one or two swaps drawn explicitly, cancellations redrawn (module notes).

    Returns
    -------
    list of str, length n  (and list of int, length n, if ``return_counts``)
    """
    kind = v.check_choice(kind, "kind", NOISE_TYPES)
    word_protocol = v.check_choice(word_protocol, "word_protocol", WORD_PROTOCOLS)
    seed = v.check_seed(seed)
    min_char = v.check_int(min_char, "min_char", lower=1)
    short_min_char = v.check_int(short_min_char, "short_min_char", lower=1, upper=min_char)
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be a sequence of strings")
    # build (and import) the augmenters before seeding: importing nlpaug and its dependencies
    # draws from the global random state, which must not happen inside a seeded block
    if kind == "word":
        _swap_aug(1), _swap_aug(2), _plain_swap_aug()
    else:
        _keyboard_aug(min_char), _keyboard_aug(short_min_char)
    noisy, counts = [], []
    for i, text in enumerate(texts):
        with _seeded_random(_sentence_seed(seed, kind, i)):
            if kind == "word":
                out, cnt = word_swap(text) if word_protocol == "explicit" else word_swap_nlpaug(text)
            else:
                out, cnt = keyboard_typos(text, min_char, short_min_char)
        noisy.append(out)
        counts.append(cnt)
    return (noisy, counts) if return_counts else noisy
