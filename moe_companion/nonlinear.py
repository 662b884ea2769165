"""Non-linear validation (Section 3.1, Appendix B.3, Tables 2-3): dense vs MoE networks under feature noise.

The paper trains a dense network and an MoE "with access to a correctly routed input" on a synthetic data
set with a perfect modular structure (Eq. 1), then adds Gaussian feature noise ``N(0, sigma^2)`` to the
inputs.  Its code, dimensions, optimiser and epochs are not published; everything below is this
companion's choice, stated in :data:`DEFAULTS` and varied by :func:`run_sensitivity`.

Data (one independent draw per seed)
    :class:`~moe_companion.model.BlockModel` with ``k`` Toeplitz blocks of ``block_dim`` features: a sample
    is active in one block ``z`` (uniform), zero elsewhere.  Regression targets are ``y = x^T beta*``
    (noise-free, as in the paper).  Classification labels come from a random two-layer ReLU *teacher* per
    block: ``label = argmax_c B_z (relu(A_z x_z) - E relu(A_z x_z))`` with ``n_classes`` classes.
Models (all trained on clean inputs)
    ``dense``   sees all ``d = k * block_dim`` features.  Regression: one linear layer ``d -> 1`` (no bias).
                Classification: ``d -> H -> C`` with a ReLU, biases in both layers.
    ``oracle``  one expert per block, routed by the true block ``z`` (the paper's MoE).  Expert ``i`` sees
                only its block.  Regression: ``block_dim -> 1`` per expert (no bias), so ``k * block_dim = d``
                parameters, the dense count.  Classification: ``block_dim -> h -> C`` per expert with a
                hidden bias, no per-expert output bias and one shared output bias, so the total is
                ``h (d + k + k C) + C``; the dense width ``H`` is chosen so that ``H (d + 1 + C) + C`` is
                *exactly* the same (:func:`matched_dense_hidden`).
    ``router``  the same experts with a *learned* softmax top-1 gate trained jointly (an extension beyond
                the paper): logits ``G^T (x * x) + g`` (a gate on squared features, the QDA-like router of
                Theorem 1; a gate linear in ``x`` cannot tell zero-mean blocks apart), output
                ``p_top * expert_top(x_top)`` (Switch-style) plus a load-balancing loss; during training the
                expert is drawn from the softmax (Gumbel-max, seeded per replica) instead of its argmax,
                so that every expert sees its block early on.  It adds the ``d k + k`` gate parameters to
                the oracle count.

Seeds: each replica's seed is an int, ``None`` or a ``numpy.random.Generator`` (through
``_validate.check_random_state``, which turns the last two into an int); that int seeds every stream of the
replica through ``numpy.random.SeedSequence`` and per-replica ``torch.Generator`` objects.  Neither numpy's
nor torch's global generator is ever used.  Settings are checked (:func:`check_settings`) before any data
are drawn or models trained.  This module holds the maths and experiments only; the figures, tables and
findings of the chapter are in :mod:`moe_companion.chapters.nonlinear`.

Every model carries a leading *replica* axis: the seeds of one experiment train side by side in one set
of batched tensors, each replica with its own data, initialisation and minibatch order (nothing is shared
between replicas, so a replica's numbers do not depend on which other seeds run with it, up to
floating-point reassociation in batched kernels).

Evaluation adds ``sigma * eps`` to the clean test inputs on all ``d`` coordinates, with one standard-normal
draw ``eps`` per seed reused for every ``sigma`` (common random numbers, so curves in ``sigma`` are smooth
and drops are paired).  Labels/targets stay clean.  The *robustness drop* is ``noisy - clean`` for the MSE
and ``clean - noisy`` for the accuracy (percentage points), both "lower is better" as in Tables 2-3.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from . import _validate as v
from .model import BlockModel

__all__ = [
    "DEFAULTS",
    "KINDS",
    "PAPER_TABLE2",
    "PAPER_TABLE3",
    "SIGMAS",
    "SIGMAS_TABLE2",
    "TASKS",
    "DenseNet",
    "Experiment",
    "OracleMoE",
    "RouterMoE",
    "TaskData",
    "build_model",
    "advantage",
    "at_sigma",
    "bootstrap_ratio",
    "check_settings",
    "count_parameters",
    "dense_hidden_at_least",
    "evaluate",
    "make_data",
    "matched_dense_hidden",
    "paired_interval",
    "paper_table2_implied_clean",
    "paper_table3",
    "parameter_counts",
    "run_experiment",
    "run_sensitivity",
    "theorem3_clean_training",
    "train_model",
]

TASKS = ("regression", "classification")
KINDS = ("dense", "oracle", "router")

#: The companion's choices (the paper states none of them).
DEFAULTS: dict = {
    "k": 4,  # experts = feature blocks
    "block_dim": 8,  # features per block (d = 32)
    "rho": 0.5,  # Toeplitz correlation inside a block
    "n_classes": 3,  # classification only
    "teacher_width": 16,  # hidden units of each block's random teacher (classification only)
    "expert_hidden": 24,  # hidden units per expert (classification only); dense width is matched
    "n_train": 2048,
    "n_test": 4096,
    "epochs": 40,
    "batch_size": 128,
    "lr": 3e-2,  # Adam, cosine decay to 0 over the run
    "balance": 0.5,  # load-balancing weight of the learned router
    "dense_hidden": None,  # dense width (classification); None = matched to the oracle MoE's count
}
SIGMAS_TABLE2 = (0.1, 0.2, 0.3, 0.4, 0.5)
#: Noise levels evaluated by default (0 = clean), step 0.05.
SIGMAS = tuple(round(0.05 * i, 2) for i in range(11))

#: Table 2 of the paper (regression, MSE): sigma -> (mean, std) of dense noisy, MoE noisy, dense drop, MoE drop.
PAPER_TABLE2 = {
    0.1: ((3.13e-3, 4.45e-6), (7.07e-4, 6.36e-6), (2.10e-4, 2.18e-7), (-1.54e-5, 4.28e-6)),
    0.2: ((9.88e-3, 6.85e-6), (2.64e-3, 1.73e-5), (3.41e-3, 3.45e-6), (1.50e-5, 1.69e-5)),
    0.3: ((1.57e-2, 1.17e-5), (5.64e-3, 3.49e-5), (1.41e-2, 1.49e-5), (2.84e-4, 4.13e-5)),
    0.4: ((1.88e-2, 2.44e-5), (9.40e-3, 5.79e-5), (3.39e-2, 2.47e-5), (1.01e-3, 8.65e-5)),
    0.5: ((2.03e-2, 5.37e-5), (1.36e-2, 8.46e-5), (6.15e-2, 4.07e-5), (2.42e-3, 1.63e-4)),
}
#: Table 3 of the paper (classification, sigma = 0.1, accuracy in %): seed -> dense noisy, MoE noisy,
#: dense drop, MoE drop.  The paper lists four seeds.
PAPER_TABLE3 = {
    1: (74.49, 76.96, 1.03, 0.16),
    2: (78.06, 79.42, 0.68, 0.15),
    3: (74.68, 75.96, 0.01, -0.00),
    4: (73.02, 74.60, 0.35, 0.08),
}


# ---------------------------------------------------------------------------------------- validation
def _check_task(task) -> str:
    return v.check_choice(task, "task", TASKS)


def _check_kind(kind) -> str:
    return v.check_choice(kind, "kind", KINDS)


def _replica_seed(seed, name: str) -> int:
    """One replica's seed as an int: an int as is; ``None`` or a Generator through ``check_random_state``."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
        return v.check_seed(seed, name)
    if seed is None or isinstance(seed, np.random.Generator):
        return int(v.check_random_state(seed, name).integers(2**63))
    return v.check_seed(seed, name)  # raises the TypeError naming the parameter


def _check_seeds(seeds) -> tuple[int, ...]:
    """The replicas' seeds as distinct ints.

    ``seeds`` is one seed or a sequence of seeds, each an int, ``None`` (fresh entropy) or a
    ``numpy.random.Generator`` (an int is drawn from it, so a caller can thread one stream through); the int
    of each replica then seeds every stream of that replica (data, initialisation, minibatch order, noise).
    """
    if seeds is None or isinstance(seeds, (int, np.integer, np.random.Generator)) and not isinstance(seeds, bool):
        seeds = (seeds,)
    if isinstance(seeds, (str, bytes, Mapping)):
        raise TypeError(f"seeds must be a seed or a sequence of seeds, got {seeds!r}")
    try:
        seeds = tuple(seeds)
    except TypeError:
        raise TypeError(
            f"seeds must be a seed (int, None or numpy Generator) or a sequence of seeds, got {seeds!r}"
        ) from None
    if not seeds:
        raise ValueError("seeds must list at least one seed")
    out = tuple(_replica_seed(s, f"seeds[{i}]") for i, s in enumerate(seeds))
    if len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct, got {list(out)}")
    return out


def _check_kinds(kinds) -> tuple[str, ...]:
    if isinstance(kinds, str):
        kinds = (kinds,)
    try:
        kinds = tuple(kinds)
    except TypeError:
        raise TypeError(f"kinds must be a sequence of model kinds, got {kinds!r}") from None
    if not kinds:
        raise ValueError(f"kinds must list at least one of {KINDS}")
    kinds = tuple(_check_kind(kd) for kd in kinds)
    dup = sorted({kd for kd in kinds if kinds.count(kd) > 1})
    if dup:
        raise ValueError(f"kinds must not repeat a kind, got {list(kinds)} ({', '.join(dup)} twice)")
    return kinds


def _check_sigmas(sigmas) -> np.ndarray:
    arr = np.atleast_1d(v.check_array(sigmas, "sigma", ndim=(0, 1)))
    if arr.size == 0:
        raise ValueError("sigma must list at least one noise level")
    if np.any(arr < 0):
        raise ValueError(f"sigma must be >= 0, got {arr.min():g}")
    return arr


def _check_hyper(epochs, batch_size, lr, balance) -> tuple[int, int, float, float]:
    return (
        v.check_int(epochs, "epochs", lower=1),
        v.check_int(batch_size, "batch_size", lower=1),
        v.check_scalar(lr, "lr", lower=0.0, lower_inclusive=False),
        v.check_scalar(balance, "balance", lower=0.0),
    )


def check_settings(task: str, **settings) -> dict:
    """:data:`DEFAULTS` with ``settings`` applied, every entry checked (call it before any heavy work).

    Raises
    ------
    ValueError, TypeError
        Naming the first bad setting (unknown names included), e.g. ``expert_hidden must be a multiple of 3``.
    """
    task = _check_task(task)
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"settings has unknown names {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **settings}
    for name in ("k", "block_dim", "teacher_width", "n_train", "n_test"):
        cfg[name] = v.check_int(cfg[name], name, lower=1)
    cfg["rho"] = v.check_scalar(cfg["rho"], "rho", lower=-1.0, upper=1.0, lower_inclusive=False, upper_inclusive=False)
    cfg["epochs"], cfg["batch_size"], cfg["lr"], cfg["balance"] = _check_hyper(
        cfg["epochs"], cfg["batch_size"], cfg["lr"], cfg["balance"]
    )
    if task == "classification":
        cfg["n_classes"] = v.check_int(cfg["n_classes"], "n_classes", lower=2)
        matched_dense_hidden(cfg["k"], cfg["block_dim"], cfg["n_classes"], cfg["expert_hidden"])
        if cfg["dense_hidden"] is not None:
            cfg["dense_hidden"] = v.check_int(cfg["dense_hidden"], "dense_hidden", lower=1)
    elif cfg["dense_hidden"] is not None:
        raise ValueError(
            f"dense_hidden must be None for regression (the dense model is linear), got {cfg['dense_hidden']!r}"
        )
    return cfg


# ---------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class TaskData:
    """Train/test draws of one task for R seeds (the replica axis comes first).

    Attributes
    ----------
    task : str
        ``"regression"`` or ``"classification"``.
    seeds : tuple of int, length R
    k, block_dim, n_classes : int
        Blocks, features per block (``d = k * block_dim``), classes (1 for regression).
    x_train, x_test : Tensor, shapes (R, n_train, d), (R, n_test, d)
        Clean features (zero outside the active block), float32.
    y_train, y_test : Tensor, shapes (R, n)
        Regression targets (float32) or class labels (int64).
    z_train, z_test : Tensor of int64, shapes (R, n)
        Active block of each sample.
    eps_test : Tensor, shape (R, n_test, d)
        Standard-normal evaluation noise; the noisy test input at level sigma is ``x_test + sigma * eps_test``.
    """

    task: str
    seeds: tuple
    k: int
    block_dim: int
    n_classes: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    z_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    z_test: torch.Tensor
    eps_test: torch.Tensor

    @property
    def d(self) -> int:
        """Total feature dimension ``k * block_dim``."""
        return self.k * self.block_dim

    @property
    def replicas(self) -> int:
        """Number of seeds R."""
        return len(self.seeds)


def _teacher_labels(x_blocks: np.ndarray, z: np.ndarray, teachers, cov: np.ndarray) -> np.ndarray:
    """Labels ``argmax_c B_z (relu(A_z x_z) - E relu(A_z x_z))``; x_blocks shape (n, k, block_dim)."""
    labels = np.empty(z.size, dtype=np.int64)
    for i, (a, b) in enumerate(teachers):
        rows = np.flatnonzero(z == i)
        # E relu(a^T x) = sqrt(a^T Sigma a / (2 pi)) for x ~ N(0, Sigma): centres the teacher's features.
        mean = np.sqrt(np.einsum("hd,de,he->h", a, cov, a) / (2 * np.pi))
        logits = (np.maximum(x_blocks[rows, i] @ a.T, 0.0) - mean) @ b.T
        labels[rows] = logits.argmax(axis=1)
    return labels


def _block_model(seed: int, k: int, block_dim: int, rho: float) -> BlockModel:
    """The clean block model (beta*, Sigma_i, uniform p) that seed ``seed`` draws."""
    s_model = np.random.SeedSequence(seed).generate_state(5)[0]
    return BlockModel.toeplitz(k, block_dim, rho, sigma2=0.0, seed=int(s_model))


def make_data(
    task: str,
    seeds: Iterable[int] | int = (0,),
    *,
    k: int = DEFAULTS["k"],
    block_dim: int = DEFAULTS["block_dim"],
    rho: float = DEFAULTS["rho"],
    n_classes: int = DEFAULTS["n_classes"],
    teacher_width: int = DEFAULTS["teacher_width"],
    n_train: int = DEFAULTS["n_train"],
    n_test: int = DEFAULTS["n_test"],
) -> TaskData:
    """Draw the modular synthetic data set of ``task`` for every seed (independent draws).

    Each seed fixes ``beta*`` (or the teachers), the train and test samples and the evaluation noise,
    through independent streams of ``numpy.random.SeedSequence(seed)``.

    Returns
    -------
    TaskData
        Tensors with a leading axis over ``seeds``.
    """
    task = _check_task(task)
    seeds = _check_seeds(seeds)
    k = v.check_int(k, "k", lower=1)
    block_dim = v.check_int(block_dim, "block_dim", lower=1)
    rho = v.check_scalar(rho, "rho", lower=-1.0, upper=1.0, lower_inclusive=False, upper_inclusive=False)
    n_classes = v.check_int(n_classes, "n_classes", lower=2) if task == "classification" else 1
    teacher_width = v.check_int(teacher_width, "teacher_width", lower=1)
    n_train = v.check_int(n_train, "n_train", lower=1)
    n_test = v.check_int(n_test, "n_test", lower=1)
    d = k * block_dim
    parts: dict[str, list[np.ndarray]] = {key: [] for key in ("xtr", "ytr", "ztr", "xte", "yte", "zte", "eps")}
    for seed in seeds:
        _, s_train, s_test, s_eps, s_teacher = np.random.SeedSequence(seed).generate_state(5)
        bm = _block_model(seed, k, block_dim, rho)
        tr = bm.sample(n_train, seed=int(s_train))
        te = bm.sample(n_test, seed=int(s_test))
        if task == "regression":
            ytr, yte = tr.y, te.y
        else:
            rng = np.random.default_rng(int(s_teacher))
            teachers = [
                (
                    rng.standard_normal((teacher_width, block_dim)) / np.sqrt(block_dim),
                    rng.standard_normal((n_classes, teacher_width)) / np.sqrt(teacher_width),
                )
                for _ in range(k)
            ]
            cov = bm.covariances[0]
            ytr = _teacher_labels(tr.x.reshape(n_train, k, block_dim), tr.z, teachers, cov)
            yte = _teacher_labels(te.x.reshape(n_test, k, block_dim), te.z, teachers, cov)
        eps = np.random.default_rng(int(s_eps)).standard_normal((n_test, d))
        for key, arr in zip(parts, (tr.x, ytr, tr.z, te.x, yte, te.z, eps)):
            parts[key].append(arr)

    def stack(key, dtype):
        return torch.as_tensor(np.stack(parts[key]), dtype=dtype)

    ydtype = torch.float32 if task == "regression" else torch.int64
    return TaskData(
        task=task,
        seeds=seeds,
        k=k,
        block_dim=block_dim,
        n_classes=n_classes,
        x_train=stack("xtr", torch.float32),
        y_train=stack("ytr", ydtype),
        z_train=stack("ztr", torch.int64),
        x_test=stack("xte", torch.float32),
        y_test=stack("yte", ydtype),
        z_test=stack("zte", torch.int64),
        eps_test=stack("eps", torch.float32),
    )


# ---------------------------------------------------------------------------------------- models
def matched_dense_hidden(k: int, block_dim: int, n_classes: int, expert_hidden: int) -> int:
    """Dense hidden width ``H`` whose parameter count equals the oracle MoE's exactly.

    Dense: ``H (d + 1 + C) + C``; MoE: ``h (d + k + k C) + C`` with ``d = k * block_dim``.  Hence
    ``H = h (d + k + k C) / (d + 1 + C)``, which must be an integer.

    Raises
    ------
    ValueError
        Naming ``expert_hidden`` (with the step that works) when no integer ``H`` exists.
    """
    k = v.check_int(k, "k", lower=1)
    block_dim = v.check_int(block_dim, "block_dim", lower=1)
    n_classes = v.check_int(n_classes, "n_classes", lower=2)
    h = v.check_int(expert_hidden, "expert_hidden", lower=1)
    d = k * block_dim
    num, den = d + k + k * n_classes, d + 1 + n_classes
    if (h * num) % den:
        step = den // math.gcd(num, den)
        raise ValueError(
            f"expert_hidden must be a multiple of {step} for k={k}, block_dim={block_dim}, "
            f"n_classes={n_classes} (so that the dense width {h}*{num}/{den} is an integer), got {h}"
        )
    return h * num // den


def _uniform(gen: torch.Generator, shape, fan_in: int) -> torch.Tensor:
    """PyTorch's default ``nn.Linear`` initialisation, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(shape, generator=gen) * 2 - 1) * bound


def _init(seeds, make) -> dict[str, torch.nn.Parameter]:
    """Stack per-replica initial tensors ``make(generator) -> dict`` into parameters with a replica axis."""
    per = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, 1]).generate_state(1)[0]))
        per.append(make(gen))
    return {name: torch.nn.Parameter(torch.stack([p[name] for p in per])) for name in per[0]}


class _Replicated(torch.nn.Module):
    """Common shape checks of the batched models; subclasses define ``_forward(x, z)``."""

    kind = ""

    def __init__(self, task: str, k: int, block_dim: int, n_classes: int, replicas: int):
        super().__init__()
        self.task, self.k, self.block_dim, self.n_classes, self.replicas = task, k, block_dim, n_classes, replicas

    @property
    def d(self) -> int:
        """Input dimension ``k * block_dim``."""
        return self.k * self.block_dim

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None, explore: torch.Tensor | None = None):
        """Outputs for inputs ``x`` of shape (R, n, d): (R, n) for regression, (R, n, C) logits otherwise.

        ``z`` (R, n) is the true block, used only by the oracle MoE.  ``explore`` (R, n, k), used only by
        the learned router during training, is Gumbel noise added to the gate logits when choosing the
        expert (so the choice is a draw from the softmax, not its argmax).  Returns ``(output, info)``
        where ``info`` holds the learned router's choice and balance loss (empty for the other models).
        """
        if x.ndim != 3 or x.shape[0] != self.replicas or x.shape[2] != self.d:
            raise ValueError(f"x must have shape (replicas={self.replicas}, n, d={self.d}), got {tuple(x.shape)}")
        if z is not None and tuple(z.shape) != tuple(x.shape[:2]):
            raise ValueError(f"z must have shape {tuple(x.shape[:2])} (one block per sample), got {tuple(z.shape)}")
        if explore is not None and tuple(explore.shape) != (*x.shape[:2], self.k):
            raise ValueError(f"explore must have shape {(*x.shape[:2], self.k)}, got {tuple(explore.shape)}")
        return self._forward(x, z, explore)

    def _experts(self, x: torch.Tensor) -> torch.Tensor:
        """Every expert on its own block: (R, n, k) for regression, (R, n, k, C) for classification."""
        R, n, _ = x.shape
        xb = x.view(R, n, self.k, self.block_dim)
        if self.task == "regression":
            return (xb * self.w.view(R, 1, self.k, self.block_dim)).sum(-1)
        hid = torch.relu(torch.einsum("rnkd,rkhd->rnkh", xb, self.u) + self.c[:, None])
        return torch.einsum("rnkh,rkch->rnkc", hid, self.v)

    def _expert_params(self, seeds, task, k, block_dim, n_classes, expert_hidden):
        if task == "regression":
            # k linear experts of block_dim weights each, stored as one (R, d) tensor
            p = _init(seeds, lambda g: {"w": _uniform(g, (k * block_dim,), block_dim)})
        else:
            h = expert_hidden
            p = _init(
                seeds,
                lambda g: {
                    "u": _uniform(g, (k, h, block_dim), block_dim),
                    "c": _uniform(g, (k, h), block_dim),
                    "v": _uniform(g, (k, n_classes, h), h),
                    "b": _uniform(g, (n_classes,), h),
                },
            )
        for name, param in p.items():
            self.register_parameter(name, param)


def _pick(out_all: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``out_all[r, n, idx[r, n]]`` for out_all (R, n, k[, C])."""
    if out_all.ndim == 3:
        return out_all.gather(2, idx[..., None]).squeeze(2)
    return out_all.gather(2, idx[..., None, None].expand(-1, -1, 1, out_all.shape[-1])).squeeze(2)


class DenseNet(_Replicated):
    """The dense model: ``d -> 1`` linear (regression) or ``d -> H -> C`` ReLU network (classification)."""

    kind = "dense"

    def __init__(self, task, k, block_dim, n_classes, hidden, seeds):
        super().__init__(task, k, block_dim, n_classes, len(seeds))
        d = k * block_dim
        if task == "regression":
            params = _init(seeds, lambda g: {"w": _uniform(g, (d,), d)})
        else:
            params = _init(
                seeds,
                lambda g: {
                    "w1": _uniform(g, (hidden, d), d),
                    "b1": _uniform(g, (hidden,), d),
                    "w2": _uniform(g, (n_classes, hidden), hidden),
                    "b2": _uniform(g, (n_classes,), hidden),
                },
            )
        for name, param in params.items():
            self.register_parameter(name, param)

    def _forward(self, x, z, explore):
        if self.task == "regression":
            return torch.einsum("rnd,rd->rn", x, self.w), {}
        hid = torch.relu(torch.einsum("rnd,rhd->rnh", x, self.w1) + self.b1[:, None])
        return torch.einsum("rnh,rch->rnc", hid, self.w2) + self.b2[:, None], {}


class OracleMoE(_Replicated):
    """One expert per block, each seeing only its block, routed by the true block ``z`` (the paper's MoE)."""

    kind = "oracle"

    def __init__(self, task, k, block_dim, n_classes, expert_hidden, seeds):
        super().__init__(task, k, block_dim, n_classes, len(seeds))
        self._expert_params(seeds, task, k, block_dim, n_classes, expert_hidden)

    def _forward(self, x, z, explore):
        if z is None:
            raise ValueError("z must be given to the oracle MoE (it routes each sample to its true block)")
        out = _pick(self._experts(x), z)
        return (out if self.task == "regression" else out + self.b[:, None]), {}


class RouterMoE(_Replicated):
    """The same experts behind a learned softmax top-1 gate on squared features, trained jointly."""

    kind = "router"

    def __init__(self, task, k, block_dim, n_classes, expert_hidden, seeds):
        super().__init__(task, k, block_dim, n_classes, len(seeds))
        self._expert_params(seeds, task, k, block_dim, n_classes, expert_hidden)
        d = k * block_dim
        gate = _init(seeds, lambda g: {"gw": _uniform(g, (d, k), d), "gb": _uniform(g, (k,), d)})
        for name, param in gate.items():
            self.register_parameter(name, param)

    def _forward(self, x, z, explore):
        logits = torch.einsum("rnd,rdk->rnk", x * x, self.gw) + self.gb[:, None]
        probs = torch.softmax(logits, dim=-1)
        idx = probs.argmax(-1) if explore is None else (logits.detach() + explore).argmax(-1)
        gate = probs.gather(2, idx[..., None]).squeeze(2)
        out = _pick(self._experts(x), idx)
        out = gate * out if self.task == "regression" else gate[..., None] * out + self.b[:, None]
        # Switch-Transformer balance loss k * sum_i f_i P_i per replica (1 when perfectly balanced)
        frac = F.one_hot(idx, self.k).float().mean(1)
        balance = self.k * (frac * probs.mean(1)).sum(-1)
        return out, {"route": idx, "balance": balance}


def build_model(
    kind: str,
    task: str,
    seeds=(0,),
    *,
    k: int = DEFAULTS["k"],
    block_dim: int = DEFAULTS["block_dim"],
    n_classes: int = DEFAULTS["n_classes"],
    expert_hidden: int = DEFAULTS["expert_hidden"],
    dense_hidden: int | None = None,
) -> _Replicated:
    """A freshly initialised ``dense``, ``oracle`` or ``router`` model with one replica per seed.

    Initialisation is PyTorch's ``nn.Linear`` default, drawn from a ``torch.Generator`` seeded by each
    replica's seed (never torch's global generator).  The dense classification width is ``dense_hidden``,
    or, when ``None``, :func:`matched_dense_hidden` of ``expert_hidden`` (the oracle MoE's parameter count).
    """
    kind, task, seeds = _check_kind(kind), _check_task(task), _check_seeds(seeds)
    k = v.check_int(k, "k", lower=1)
    block_dim = v.check_int(block_dim, "block_dim", lower=1)
    if task == "regression":
        if dense_hidden is not None:
            raise ValueError(
                f"dense_hidden must be None for regression (the dense model is linear), got {dense_hidden!r}"
            )
        n_classes, expert_hidden, hidden = 1, 0, 0
    else:
        hidden = matched_dense_hidden(k, block_dim, n_classes, expert_hidden)
        if dense_hidden is not None:
            hidden = v.check_int(dense_hidden, "dense_hidden", lower=1)
    if kind == "dense":
        return DenseNet(task, k, block_dim, n_classes, hidden, seeds)
    cls = OracleMoE if kind == "oracle" else RouterMoE
    return cls(task, k, block_dim, n_classes, expert_hidden, seeds)


def count_parameters(model: torch.nn.Module) -> int:
    """Trainable parameters of ONE replica (the replica axis is not counted), the router's included."""
    if not isinstance(model, _Replicated):
        raise TypeError(f"model must be a model from build_model, got {type(model).__name__}")
    return sum(p[0].numel() for p in model.parameters())


#: Parameter names of the learned gate (the router) in :class:`RouterMoE`.
ROUTER_PARAMETERS = ("gw", "gb")


def parameter_counts(task: str, **settings) -> dict[str, dict[str, int]]:
    """Parameters of one model of each kind, split into the router's and the rest.

    Returns ``{kind: {"experts": n, "router": n_gate, "total": n + n_gate}}``.  The dense model has no
    router (0); the oracle MoE's router is the true block ``z``, given for free (0 learned parameters, but
    side information the dense model does not get); the learned router's gate has ``d k + k`` parameters.
    Counted on freshly built models (:func:`build_model`), not from a formula.
    """
    cfg = check_settings(task, **settings)
    out = {}
    for kind in KINDS:
        model = build_model(
            kind,
            task,
            (0,),
            k=cfg["k"],
            block_dim=cfg["block_dim"],
            n_classes=cfg["n_classes"],
            expert_hidden=cfg["expert_hidden"],
            dense_hidden=cfg["dense_hidden"],
        )
        router = sum(p[0].numel() for name, p in model.named_parameters() if name in ROUTER_PARAMETERS)
        total = count_parameters(model)
        out[kind] = {"experts": total - router, "router": router, "total": total}
    return out


def dense_hidden_at_least(
    n_params: int,
    k: int = DEFAULTS["k"],
    block_dim: int = DEFAULTS["block_dim"],
    n_classes: int = DEFAULTS["n_classes"],
) -> int:
    """Smallest dense classification width ``H`` with ``H (d + 1 + C) + C >= n_params`` parameters."""
    n_params = v.check_int(n_params, "n_params", lower=1)
    k = v.check_int(k, "k", lower=1)
    block_dim = v.check_int(block_dim, "block_dim", lower=1)
    n_classes = v.check_int(n_classes, "n_classes", lower=2)
    per = k * block_dim + 1 + n_classes
    return max(1, -(-(n_params - n_classes) // per))


# ---------------------------------------------------------------------------------------- training
def _loss(task, out, y) -> torch.Tensor:
    """Per-replica mean loss, shape (R,): MSE or cross-entropy."""
    if task == "regression":
        return ((out - y) ** 2).mean(1)
    R, n, C = out.shape
    return F.cross_entropy(out.reshape(R * n, C), y.reshape(-1), reduction="none").view(R, n).mean(1)


def _check_pair(model, data) -> None:
    if not isinstance(model, _Replicated):
        raise TypeError(f"model must be a model from build_model, got {type(model).__name__}")
    if not isinstance(data, TaskData):
        raise TypeError(f"data must be a TaskData from make_data, got {type(data).__name__}")
    if model.task != data.task:
        raise ValueError(f"data.task must match the model's task {model.task!r}, got {data.task!r}")
    for name in ("k", "block_dim", "n_classes", "replicas"):
        if getattr(model, name) != getattr(data, name):
            raise ValueError(
                f"data.{name} must match the model's {name}={getattr(model, name)}, got {getattr(data, name)}"
            )


def _metric(task, out, y) -> torch.Tensor:
    """Per-replica test metric, shape (R,): MSE, or accuracy in percent."""
    if task == "regression":
        return ((out - y) ** 2).mean(1)
    return (out.argmax(-1) == y).float().mean(1) * 100.0


def train_model(
    model: _Replicated,
    data: TaskData,
    *,
    epochs: int = DEFAULTS["epochs"],
    batch_size: int = DEFAULTS["batch_size"],
    lr: float = DEFAULTS["lr"],
    balance: float = DEFAULTS["balance"],
) -> dict[str, np.ndarray]:
    """Train ``model`` in place on the clean training inputs with Adam (cosine learning-rate decay).

    Every replica draws its own minibatch order from its seed.  The loss summed over replicas has
    per-replica gradients, so replicas do not interact.

    Returns
    -------
    dict
        ``"train_loss"`` (R, epochs): mean minibatch loss of each epoch (MSE or cross-entropy, without the
        balance term); ``"test_clean"`` (R, epochs): clean test MSE or accuracy (%) after each epoch.
    """
    _check_pair(model, data)
    epochs, batch_size, lr, balance = _check_hyper(epochs, batch_size, lr, balance)
    R, n = data.y_train.shape
    steps_per_epoch = math.ceil(n / batch_size)
    total = epochs * steps_per_epoch
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / total)))
    gens = [torch.Generator().manual_seed(int(np.random.SeedSequence([s, 2]).generate_state(1)[0])) for s in data.seeds]
    rows = torch.arange(R)[:, None]
    explore = isinstance(model, RouterMoE)
    train_loss = np.zeros((R, epochs))
    test_clean = np.zeros((R, epochs))
    model.train()
    for epoch in range(epochs):
        perm = torch.stack([torch.randperm(n, generator=g) for g in gens])
        xs, ys, zs = data.x_train[rows, perm], data.y_train[rows, perm], data.z_train[rows, perm]
        gumbel = None
        if explore:
            u = torch.stack([torch.rand((n, model.k), generator=g) for g in gens])
            gumbel = -torch.log(-torch.log(u.clamp_min(1e-12)))
        acc = torch.zeros(R)
        for start in range(0, n, batch_size):
            sl = slice(start, start + batch_size)
            out, info = model(xs[:, sl], zs[:, sl], None if gumbel is None else gumbel[:, sl])
            loss = _loss(data.task, out, ys[:, sl])
            total_loss = loss.sum()
            if "balance" in info and balance > 0:
                total_loss = total_loss + balance * info["balance"].sum()
            opt.zero_grad(set_to_none=True)
            total_loss.backward()
            opt.step()
            sched.step()
            acc += loss.detach() * xs[:, sl].shape[1]
        train_loss[:, epoch] = (acc / n).numpy()
        with torch.no_grad():
            out, _ = model(data.x_test, data.z_test)
            test_clean[:, epoch] = _metric(data.task, out, data.y_test).numpy()
    return {"train_loss": train_loss, "test_clean": test_clean}


def evaluate(model: _Replicated, data: TaskData, sigmas) -> dict[str, np.ndarray]:
    """Test error of ``model`` with feature noise ``x_test + sigma * eps_test`` at every ``sigma``.

    Parameters
    ----------
    sigmas : float or array_like, shape (S,)
        Noise standard deviations, each >= 0 (0 gives the clean error).

    Returns
    -------
    dict
        ``"sigma"`` (S,); ``"metric"`` (R, S): MSE (regression) or accuracy in % (classification);
        ``"routing"`` (R, S): percentage of test samples the model sends to their true block (100 for the
        oracle; NaN for the dense model).
    """
    sig = _check_sigmas(sigmas)
    _check_pair(model, data)
    metric = np.zeros((data.replicas, sig.size))
    routing = np.full((data.replicas, sig.size), np.nan)
    with torch.no_grad():
        for j, s in enumerate(sig):
            out, info = model(data.x_test + float(s) * data.eps_test, data.z_test)
            metric[:, j] = _metric(data.task, out, data.y_test).numpy()
            if "route" in info:
                routing[:, j] = (info["route"] == data.z_test).float().mean(1).numpy() * 100
            elif model.kind == "oracle":
                routing[:, j] = 100.0
    return {"sigma": sig, "metric": metric, "routing": routing}


# ---------------------------------------------------------------------------------------- experiments
@dataclass
class Experiment:
    """Everything one task's experiment produced, for all three models and all seeds.

    Attributes
    ----------
    task : str
    settings : dict
        The hyper-parameters used (DEFAULTS with overrides).
    seeds : tuple of int
    params : dict kind -> int
        Parameter count of one model of each kind.
    evals : pandas.DataFrame
        Columns ``kind, seed, sigma, metric, routing`` (one row per model, seed and noise level).
    curves : dict kind -> dict
        The :func:`train_model` histories, arrays of shape (R, epochs).
    models, data : dict kind -> model, TaskData
        The trained models and their data, kept only with ``run_experiment(..., keep_models=True)`` (so that
        they can be evaluated at any other noise level with :func:`evaluate`).
    """

    task: str
    settings: dict
    seeds: tuple
    params: dict = field(default_factory=dict)
    evals: pd.DataFrame | None = None
    curves: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    data: TaskData | None = None

    @property
    def metric_name(self) -> str:
        """``"MSE"`` or ``"accuracy (%)"``."""
        return "MSE" if self.task == "regression" else "accuracy (%)"

    def summary(self) -> pd.DataFrame:
        """Per kind, seed and sigma: noisy metric and robustness drop (lower is better for both drops)."""
        ev = self.evals
        clean = ev[ev.sigma == 0].set_index(["kind", "seed"])["metric"]
        out = ev.copy()
        base = clean.loc[list(zip(out.kind, out.seed))].to_numpy()
        out["drop"] = out.metric - base if self.task == "regression" else base - out.metric
        return out


def run_experiment(
    task: str, seeds=range(5), *, sigmas=SIGMAS, kinds: Sequence[str] = KINDS, keep_models: bool = False, **settings
) -> Experiment:
    """Train every model kind on clean data for every seed, then evaluate it at every noise level.

    Parameters
    ----------
    task : {"regression", "classification"}
    seeds : seed or sequence of seeds
        One replica per seed (int, ``None`` or ``numpy.random.Generator``, see :func:`make_data`): one
        independent data set, initialisation, minibatch order and evaluation-noise draw per replica.
    sigmas : array_like
        Test noise levels; 0 is added if missing (the clean error is needed for the drop).
    kinds : sequence of str
        Distinct entries of ``("dense", "oracle", "router")``.
    **settings
        Overrides of :data:`DEFAULTS`, all checked (:func:`check_settings`) before any data are drawn.
    """
    task, seeds = _check_task(task), _check_seeds(seeds)
    cfg = check_settings(task, **settings)
    sig = _check_sigmas(sigmas)
    sig = np.unique(np.concatenate([[0.0], sig]))
    kinds = _check_kinds(kinds)
    if not isinstance(keep_models, bool):
        raise TypeError(f"keep_models must be True or False, got {keep_models!r}")
    data = make_data(
        task,
        seeds,
        k=cfg["k"],
        block_dim=cfg["block_dim"],
        rho=cfg["rho"],
        n_classes=cfg["n_classes"],
        teacher_width=cfg["teacher_width"],
        n_train=cfg["n_train"],
        n_test=cfg["n_test"],
    )
    exp = Experiment(task=task, settings=cfg, seeds=seeds, data=data if keep_models else None)
    frames = []
    for kind in kinds:
        model = build_model(
            kind,
            task,
            seeds,
            k=cfg["k"],
            block_dim=cfg["block_dim"],
            n_classes=cfg["n_classes"],
            expert_hidden=cfg["expert_hidden"],
            dense_hidden=cfg["dense_hidden"],
        )
        exp.params[kind] = count_parameters(model)
        exp.curves[kind] = train_model(
            model, data, epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"], balance=cfg["balance"]
        )
        if keep_models:
            exp.models[kind] = model
        res = evaluate(model, data, sig)
        R, S = res["metric"].shape
        frames.append(
            pd.DataFrame(
                {
                    "kind": kind,
                    "seed": np.repeat(seeds, S),
                    "sigma": np.tile(sig, R),
                    "metric": res["metric"].ravel(),
                    "routing": res["routing"].ravel(),
                }
            )
        )
    exp.evals = pd.concat(frames, ignore_index=True)
    return exp


def run_sensitivity(
    task: str,
    name: str,
    values: Sequence,
    seeds=range(5),
    *,
    base: Experiment | None = None,
    sigmas=SIGMAS,
    kinds: Sequence[str] = KINDS,
    **settings,
) -> dict:
    """:func:`run_experiment` once per value of the hyper-parameter ``name``; returns ``{value: Experiment}``.

    Every value is checked (with the other settings) before the first model is trained.  ``base`` (an
    experiment of the same task, seeds and kinds) is reused, not re-run, for the value it was run with,
    provided its other settings equal ``DEFAULTS`` with ``settings``.
    """
    task, seeds = _check_task(task), _check_seeds(seeds)
    name = v.check_choice(name, "name", tuple(DEFAULTS))
    if isinstance(values, (str, bytes)):
        raise TypeError(f"values must be a sequence of values of {name!r}, got {values!r}")
    try:
        values = list(values)
    except TypeError:
        raise TypeError(f"values must be a sequence of values of {name!r}, got {values!r}") from None
    if not values:
        raise ValueError("values must list at least one value")
    if len(set(values)) != len(values):
        raise ValueError(f"values must be distinct, got {values}")
    if name in settings:
        raise ValueError(f"settings must not also set {name!r}, the parameter that values varies")
    if base is not None and not isinstance(base, Experiment):
        raise TypeError(f"base must be an Experiment or None, got {type(base).__name__}")
    cfgs = []
    for i, val in enumerate(values):  # every value checked before any training
        try:
            cfgs.append(check_settings(task, **{**settings, name: val}))
        except (TypeError, ValueError) as err:
            raise type(err)(f"values[{i}]: {err}") from None
    sig = _check_sigmas(sigmas)
    kinds = _check_kinds(kinds)
    out = {}
    for val, cfg in zip(values, cfgs):
        if (
            base is not None
            and base.task == task
            and base.seeds == seeds
            and base.settings == cfg
            and tuple(base.params) == kinds
        ):
            out[val] = base
        else:
            out[val] = run_experiment(task, seeds, sigmas=sig, kinds=kinds, **{**settings, name: val})
    return out


# ---------------------------------------------------------------------------------------- analysis
def theorem3_clean_training(exp: Experiment, sigmas: Sequence[float] = SIGMAS_TABLE2) -> pd.DataFrame:
    """Theorem 3 with training noise ``sigma^2 = 0``: the linear models' expected noisy MSE, per seed.

    With clean training the fitted weights are ``beta*`` and a test input ``x + e``, ``e ~ N(0, s^2 I_d)``,
    costs ``s^2 ||beta*||^2`` (dense: every block's noise reaches the output) against
    ``s^2 sum_i p_i ||beta_i*||^2`` (oracle MoE: only the routed block's noise does).  The dense / MoE
    ratio is ``||beta*||^2 / sum_i p_i ||beta_i*||^2``, about ``k`` for blocks of equal norm.

    Returns
    -------
    pandas.DataFrame
        Index ``(seed, sigma)``, columns ``dense`` and ``oracle``.
    """
    if not isinstance(exp, Experiment):
        raise TypeError(f"exp must be an Experiment, got {type(exp).__name__}")
    if exp.task != "regression":
        raise ValueError(f"exp must be a regression experiment, got task {exp.task!r}")
    sig = _check_sigmas(sigmas)
    cfg = exp.settings
    rows = []
    for seed in exp.seeds:
        bm = _block_model(seed, cfg["k"], cfg["block_dim"], cfg["rho"])
        dense = float(bm.beta @ bm.beta)
        moe = float(sum(p * b @ b for p, b in zip(bm.p, bm.betas)))
        rows += [{"seed": seed, "sigma": float(s), "dense": s**2 * dense, "oracle": s**2 * moe} for s in sig]
    return pd.DataFrame(rows).set_index(["seed", "sigma"])


def at_sigma(exp: Experiment, sigma: float) -> pd.DataFrame:
    """The summary rows at noise level ``sigma`` (nearest evaluated level within 1e-9)."""
    summ = exp.summary()
    rows = summ[np.isclose(summ.sigma, sigma, rtol=0, atol=1e-9)]
    if rows.empty:
        raise ValueError(f"sigma must be one of the evaluated noise levels {sorted(summ.sigma.unique())}, got {sigma}")
    return rows


def advantage(
    exp: Experiment, what: str = "metric", sigma: float = 0.1, *, kind: str = "oracle", over: str = "dense"
) -> np.ndarray:
    """Per seed, how much better ``kind`` is than ``over`` at ``sigma`` (positive = ``kind`` better).

    ``what="metric"``: the noisy error (``over`` − ``kind`` MSE) or the noisy accuracy (``kind`` − ``over``,
    percentage points); ``what="drop"``: ``over``'s robustness drop − ``kind``'s.  Both models are evaluated
    on the same test inputs and the same noise draw of each seed, so the difference is paired.  Returns an
    array in the order of ``exp.seeds``.
    """
    if not isinstance(exp, Experiment):
        raise TypeError(f"exp must be an Experiment, got {type(exp).__name__}")
    what = v.check_choice(what, "what", ("metric", "drop"))
    kind, over = _check_kind(kind), _check_kind(over)
    sigma = v.check_scalar(sigma, "sigma", lower=0.0)
    for name, kd in (("kind", kind), ("over", over)):
        if kd not in exp.params:
            raise ValueError(f"{name} must be a kind the experiment trained {tuple(exp.params)}, got {kd!r}")
    wide = at_sigma(exp, sigma).pivot_table(index="seed", columns="kind", values=what).loc[list(exp.seeds)]
    diff = wide[over] - wide[kind]
    if what == "metric" and exp.task == "classification":
        diff = -diff
    return diff.to_numpy(dtype=float)


def paired_interval(x, level: float = 0.95) -> dict[str, float]:
    """Mean of per-seed differences ``x`` with a Student-t interval over seeds.

    Returns ``{"mean", "se", "lo", "hi", "n"}``; with one seed the interval is infinite.
    """
    from scipy import stats

    arr = v.check_array(x, "x", ndim=1)
    if arr.size == 0:
        raise ValueError("x must hold at least one difference")
    level = v.check_scalar(level, "level", lower=0.0, upper=1.0, lower_inclusive=False, upper_inclusive=False)
    n = arr.size
    mean = float(arr.mean())
    if n < 2:
        return {"mean": mean, "se": math.inf, "lo": -math.inf, "hi": math.inf, "n": 1}
    se = float(arr.std(ddof=1) / math.sqrt(n))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * se
    return {"mean": mean, "se": se, "lo": mean - half, "hi": mean + half, "n": n}


def bootstrap_ratio(num, den, *, n_boot: int = 10_000, level: float = 0.95, seed=0) -> dict[str, float]:
    """Ratio of means ``mean(num) / mean(den)`` with a percentile bootstrap over paired rows (seeds).

    ``num[i]`` and ``den[i]`` come from the same seed and are resampled together.  ``seed`` is an int,
    ``None`` or a ``numpy.random.Generator``.  Returns ``{"ratio", "lo", "hi", "n", "n_boot"}``.
    """
    a, b = v.check_array(num, "num", ndim=1), v.check_array(den, "den", ndim=1)
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"num and den must be paired arrays of the same length >= 2, got {a.shape} and {b.shape}")
    n_boot = v.check_int(n_boot, "n_boot", lower=100)
    level = v.check_scalar(level, "level", lower=0.0, upper=1.0, lower_inclusive=False, upper_inclusive=False)
    rng = v.check_random_state(seed)
    idx = rng.integers(0, a.size, size=(n_boot, a.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = a[idx].mean(1) / b[idx].mean(1)
    lo, hi = np.nanquantile(boot, [0.5 - level / 2, 0.5 + level / 2])
    return {"ratio": float(a.mean() / b.mean()), "lo": float(lo), "hi": float(hi), "n": int(a.size), "n_boot": n_boot}


def paper_table2_implied_clean() -> pd.DataFrame:
    """What Table 2's printed numbers imply, per sigma (means as printed; ``*_sd`` from its printed ± values).

    Columns: ``dense_implied_clean`` / ``oracle_implied_clean`` (noisy − drop: the clean MSE if the drop is
    "noisy − clean MSE" of one trained model; it cannot be negative nor depend on sigma), their
    ``*_implied_clean_sd`` (the two printed ± added, an upper bound on the sd of the difference),
    ``dense_drop_over_sigma2`` / ``oracle_drop_over_sigma2`` (constant for a fixed linear model trained on
    clean inputs) and the dense / MoE ratios ``noisy_ratio`` and ``drop_ratio``.
    """
    rows = {
        s: {
            "dense_implied_clean": dn[0] - dd[0],
            "oracle_implied_clean": mn[0] - md[0],
            "dense_implied_clean_sd": dn[1] + dd[1],
            "oracle_implied_clean_sd": mn[1] + md[1],
            "dense_drop_over_sigma2": dd[0] / s**2,
            "oracle_drop_over_sigma2": md[0] / s**2,
            "noisy_ratio": dn[0] / mn[0],
            "drop_ratio": dd[0] / md[0],
        }
        for s, (dn, mn, dd, md) in PAPER_TABLE2.items()
    }
    table = pd.DataFrame(rows).T
    table.index.name = "sigma"
    return table


def paper_table3() -> pd.DataFrame:
    """Table 3 as printed (sigma = 0.1, %): index seed, columns ``dense``, ``oracle`` (noisy accuracy) and
    ``dense_drop``, ``oracle_drop`` (percentage points)."""
    table = pd.DataFrame(PAPER_TABLE3, index=["dense", "oracle", "dense_drop", "oracle_drop"]).T
    table.index.name = "seed"
    return table
