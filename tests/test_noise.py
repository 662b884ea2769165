"""Word/character noise: deterministic per seed, and the counts the paper specifies (App. B.2)."""

import random

import pytest

from moe_companion.heavy.noise import add_noise, normalize_space, swap_distance, word_count_distribution

SENTS = [
    "the movie was surprisingly good and the actors were great",
    "I did not enjoy this film at all , it was boring",
    "what a wonderful and moving story about family",
    "terrible plot , awful dialogue , but lovely music",
    "an utterly forgettable sequel",
    "so bad",
    "I am so sad ok",  # no word of >= 4 characters: short-word fallback
    "wow",  # one word: nothing to swap
    "Great acting overall , truly",
    "my flight was delayed again and nobody told us anything",
] * 3


def _reachable_by_swaps(a, b, n):
    """Is token list ``b`` reachable from ``a`` by exactly ``n`` adjacent swaps (brute force)?"""
    frontier = {tuple(a)}
    for _ in range(n):
        nxt = set()
        for t in frontier:
            for i in range(len(t) - 1):
                u = list(t)
                u[i], u[i + 1] = u[i + 1], u[i]
                nxt.add(tuple(u))
        frontier = nxt
    return tuple(b) in frontier


def test_deterministic_per_seed_and_seed_dependent():
    for kind in ("word", "char"):
        a = add_noise(SENTS, kind, seed=3)
        b = add_noise(SENTS, kind, seed=3)
        c = add_noise(SENTS, kind, seed=4)
        assert a == b
        assert a != c


def test_global_random_state_untouched():
    random.seed(123)
    expected = random.random()
    random.seed(123)
    add_noise(SENTS[:4], "word", seed=0)
    add_noise(SENTS[:4], "char", seed=0)
    assert random.random() == expected


def test_paper_protocol_is_plain_nlpaug_two_swaps_on_long_sentences():
    """The paper's call: nlpaug's count is ceil(0.3 n) clipped to [1, 2] -- two swaps from 4 words on;
    the effective count (checked by brute force) is 0, 1 or 2, and the explicit protocol is not used."""
    noisy, counts = add_noise(SENTS, "word", seed=0, return_counts=True)
    for clean, out, n in zip(SENTS, noisy, counts):
        a, b = normalize_space(clean).lower().split(), out.lower().split()
        assert sorted(a) == sorted(b)
        assert n in (0, 1, 2) and _reachable_by_swaps(a, b, n)
        assert n == 0 or a != b
    dist = word_count_distribution(SENTS, [0, 1, 2, 3])
    assert dist["n"] == 4 * len(SENTS) and sum(dist["counts"].values()) == dist["n"]
    assert dist["shares"].get(2, 0) > 0.7 and set(dist["counts"]) <= {0, 1, 2}
    # the effective count of a cancelled pair of swaps is 0, of one swap 1
    assert swap_distance("a b c d", "a b c d") == 0 and swap_distance("a b c d", "b a c d") == 1
    assert swap_distance("a b c d", "b a d c") == 2 and swap_distance("a a b", "a b a") == 1
    with pytest.raises(ValueError, match="rearrangement"):
        swap_distance("a b", "a c")
    with pytest.raises(ValueError, match="word_protocol"):
        add_noise(SENTS, "word", 0, word_protocol="random")


def test_explicit_protocol_one_or_two_adjacent_swaps():
    noisy, counts = add_noise(SENTS, "word", seed=0, return_counts=True, word_protocol="explicit")
    seen = set()
    for clean, out, n in zip(SENTS, noisy, counts):
        a = normalize_space(clean).lower().split()
        b = out.lower().split()
        if len(a) < 2:
            assert n == 0 and out == normalize_space(clean)
            continue
        seen.add(n)
        assert n in (1, 2)
        assert sorted(a) == sorted(b)  # a permutation of the same words
        assert a != b  # something changed (no cancelled swaps)
        assert _reachable_by_swaps(a, b, n)  # ... by exactly n adjacent swaps
        if n == 1:
            diff = [i for i in range(len(a)) if a[i] != b[i]]
            assert len(diff) == 2 and diff[1] == diff[0] + 1
        if len(a) == 2:
            assert n == 1
    assert seen == {1, 2}


def test_char_noise_two_words_one_char_each():
    noisy, counts = add_noise(SENTS, "char", seed=1, return_counts=True)
    for clean, out, n in zip(SENTS, noisy, counts):
        a, b = normalize_space(clean).split(), out.split()
        assert len(a) == len(b)
        changed = [i for i in range(len(a)) if a[i] != b[i]]
        assert len(changed) == n
        for i in changed:
            assert len(a[i]) == len(b[i])
            assert sum(x != y for x, y in zip(a[i], b[i])) == 1  # at most one character per word
            assert len(a[i]) >= 2  # 1-letter words are never edited
        long_words = sum(len(w) >= 4 for w in a)
        if long_words >= 2:
            assert n == 2 and all(len(a[i]) >= 4 for i in changed)  # nlpaug's min_char=4 respected
        elif sum(len(w) >= 2 for w in a) >= 2:
            assert n == 2  # short-word fallback
    assert counts[SENTS.index("I am so sad ok")] == 2


def test_keyboard_table_never_inserts_spaces():
    text = ["you usually use your umbrella unusually"] * 40
    for seed in range(5):
        for out in add_noise(text, "char", seed=seed):
            assert len(out.split()) == 6


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="kind"):
        add_noise(SENTS, "typo", seed=0)
    with pytest.raises(ValueError, match="seed"):
        add_noise(SENTS, "word", seed=-1)
    with pytest.raises(TypeError, match="texts"):
        add_noise("a sentence", "word", seed=0)
