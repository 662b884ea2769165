"""The paper's block model (Section 3.2, Eq. 1 and 3).

A sample belongs to expert ``z = i`` with probability ``p_i``.  Its clean features are zero
outside block ``i`` and ``x_i ~ N(0, Sigma_i)`` inside it; the target is ``y = x_i^T beta_i*``.
The observed features are ``xbar = x + e`` with ``e ~ N(0, sigma2 I_d)`` on *all* ``d``
coordinates (feature noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.linalg import toeplitz as _toeplitz

from . import _validate as v

__all__ = [
    "BlockModel",
    "BlockSample",
    "check_model",
    "first_probability",
    "haar_orthogonal",
    "random_model",
    "with_p1",
]


@dataclass(frozen=True)
class BlockSample:
    """A draw from the block model.

    Attributes
    ----------
    x : ndarray, shape (n, d)
        Clean features (zero outside the active block).
    xbar : ndarray, shape (n, d)
        Noisy features ``x + e``.
    y : ndarray, shape (n,)
        Targets ``x^T beta*`` (noise-free, as in the paper).
    z : ndarray of int, shape (n,)
        Active expert of each sample.
    """

    x: np.ndarray
    xbar: np.ndarray
    y: np.ndarray
    z: np.ndarray


class BlockModel:
    """k feature blocks with routing probabilities, covariances, ground truth and noise.

    Parameters
    ----------
    p : array_like, shape (k,)
        Expert probabilities ``p_i = P(z = i)``; strictly positive, summing to 1.
    covariances : sequence of k arrays, shapes (d_i, d_i)
        Symmetric positive definite covariances ``Sigma_i`` of the clean block features.
    betas : sequence of k arrays, shapes (d_i,)
        Ground-truth block parameters ``beta_i*``.
    sigma2 : float
        Feature-noise variance ``sigma^2 >= 0``.

    Examples
    --------
    >>> m = BlockModel.toeplitz(k=3, block_dim=4, rho=0.5, sigma2=0.5, seed=0)
    >>> m.k, m.d, m.dims
    (3, 12, (4, 4, 4))
    """

    def __init__(self, p, covariances, betas, sigma2):
        p = v.check_probabilities(p, "p")
        k = p.size
        if isinstance(covariances, np.ndarray) and covariances.ndim == 2:
            raise ValueError("covariances must be a sequence of k matrices, got a single 2-D array")
        if isinstance(betas, np.ndarray) and betas.ndim == 1:
            raise ValueError("betas must be a sequence of k vectors, got a single 1-D array")
        covariances = list(covariances)
        betas = list(betas)
        if len(covariances) != k:
            raise ValueError(f"covariances must have one matrix per expert (k={k} from p), got {len(covariances)}")
        if len(betas) != k:
            raise ValueError(f"betas must have one vector per expert (k={k} from p), got {len(betas)}")
        covs = tuple(v.check_spd(c, f"covariances[{i}]") for i, c in enumerate(covariances))
        bs = []
        for i, (c, b) in enumerate(zip(covs, betas)):
            bs.append(v.check_array(b, f"betas[{i}]", shape=(c.shape[0],)))
        self._p = p
        self._covs = covs
        self._betas = tuple(bs)
        self._sigma2 = v.check_scalar(sigma2, "sigma2", lower=0.0)
        for arr in (self._p, *self._covs, *self._betas):
            arr.setflags(write=False)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def toeplitz(
        cls,
        k: int,
        block_dim: int,
        rho: float = 0.5,
        *,
        p=None,
        sigma2: float = 1.0,
        beta_scale: float = 1.0,
        seed: int = 0,
    ) -> BlockModel:
        """Blocks with Toeplitz covariance ``Sigma_i[a, b] = rho^|a-b|`` (an AR(1) block).

        ``betas`` are drawn i.i.d. ``N(0, beta_scale^2 / block_dim)`` with ``seed``;
        ``p`` defaults to uniform. ``rho`` must lie in (-1, 1).
        """
        k = v.check_int(k, "k", lower=1)
        block_dim = v.check_int(block_dim, "block_dim", lower=1)
        rho = v.check_scalar(rho, "rho", lower=-1.0, upper=1.0, lower_inclusive=False, upper_inclusive=False)
        cov = _toeplitz(rho ** np.arange(block_dim))
        return cls._from_covs([cov] * k, p, sigma2, beta_scale, seed)

    @classmethod
    def isotropic(
        cls, dims: Sequence[int], variances=1.0, *, p=None, sigma2: float = 1.0, beta_scale: float = 1.0, seed: int = 0
    ) -> BlockModel:
        """Blocks with ``Sigma_i = variances[i] * I`` (``variances`` scalar or one per block)."""
        dims = [v.check_int(d, f"dims[{i}]", lower=1) for i, d in enumerate(dims)]
        if not dims:
            raise ValueError("dims must list at least one block dimension")
        var = v.check_array(variances, "variances", ndim=(0, 1), lower=0.0, lower_inclusive=False)
        if var.ndim == 0:
            var = np.full(len(dims), float(var))
        elif var.shape != (len(dims),):
            raise ValueError(
                f"variances must be a scalar or have one entry per block ({len(dims)}), got shape {var.shape}"
            )
        return cls._from_covs([s * np.eye(d) for s, d in zip(var, dims)], p, sigma2, beta_scale, seed)

    @classmethod
    def from_spectra(
        cls,
        spectra: Sequence[Sequence[float]],
        *,
        p=None,
        sigma2: float = 1.0,
        beta_scale: float = 1.0,
        rotate: bool = True,
        seed: int = 0,
    ) -> BlockModel:
        """Blocks with given eigenvalues: ``Sigma_i = U_i diag(spectra[i]) U_i^T``.

        ``U_i`` is a Haar-random rotation (seeded) when ``rotate`` is true, else the identity.
        """
        rng = v.check_random_state(seed)
        covs = []
        for i, s in enumerate(spectra):
            lam = v.check_array(s, f"spectra[{i}]", ndim=1, lower=0.0, lower_inclusive=False)
            if lam.size == 0:
                raise ValueError(f"spectra[{i}] must have at least one eigenvalue")
            u = haar_orthogonal(lam.size, seed=rng) if rotate else np.eye(lam.size)
            covs.append((u * lam) @ u.T)
        if not covs:
            raise ValueError("spectra must list at least one block spectrum")
        return cls._from_covs(covs, p, sigma2, beta_scale, int(rng.integers(2**31)))

    @classmethod
    def _from_covs(cls, covs, p, sigma2, beta_scale, seed):
        k = len(covs)
        beta_scale = v.check_scalar(beta_scale, "beta_scale", lower=0.0)
        rng = v.check_random_state(seed)
        betas = [rng.normal(0.0, beta_scale / np.sqrt(c.shape[0]), size=c.shape[0]) for c in covs]
        p = np.full(k, 1.0 / k) if p is None else p
        return cls(p, covs, betas, sigma2)

    def replace(self, *, p=None, covariances=None, betas=None, sigma2=None) -> BlockModel:
        """A copy with some parameters replaced (validated again)."""
        return BlockModel(
            self._p if p is None else p,
            self._covs if covariances is None else covariances,
            self._betas if betas is None else betas,
            self._sigma2 if sigma2 is None else sigma2,
        )

    # ------------------------------------------------------------------ properties
    @property
    def p(self) -> np.ndarray:
        """Expert probabilities, shape (k,)."""
        return self._p

    @property
    def covariances(self) -> tuple[np.ndarray, ...]:
        """Block covariances ``Sigma_i``, shapes (d_i, d_i)."""
        return self._covs

    @property
    def betas(self) -> tuple[np.ndarray, ...]:
        """Ground-truth blocks ``beta_i*``, shapes (d_i,)."""
        return self._betas

    @property
    def sigma2(self) -> float:
        """Feature-noise variance."""
        return self._sigma2

    @property
    def k(self) -> int:
        """Number of experts (blocks)."""
        return self._p.size

    @property
    def dims(self) -> tuple[int, ...]:
        """Block dimensions ``d_i``."""
        return tuple(c.shape[0] for c in self._covs)

    @property
    def d(self) -> int:
        """Total dimension ``d = sum d_i``."""
        return int(sum(self.dims))

    @cached_property
    def offsets(self) -> np.ndarray:
        """Start index of each block in the full feature vector, shape (k + 1,)."""
        return np.concatenate([[0], np.cumsum(self.dims)]).astype(int)

    def block_slice(self, i: int) -> slice:
        """Slice of block ``i`` in the full ``d``-vector."""
        i = v.check_int(i, "i", lower=0, upper=self.k - 1)
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    @property
    def beta(self) -> np.ndarray:
        """Full ground truth ``beta* = [beta_1*; ...; beta_k*]``, shape (d,)."""
        return np.concatenate(self._betas)

    @cached_property
    def eigh(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """Cached eigendecompositions ``(lam_i ascending, U_i)`` of every ``Sigma_i``."""
        out = []
        for c in self._covs:
            lam, u = np.linalg.eigh(c)
            lam.setflags(write=False)
            u.setflags(write=False)
            out.append((lam, u))
        return tuple(out)

    @cached_property
    def beta_eigen(self) -> tuple[np.ndarray, ...]:
        """``U_i^T beta_i*``: the ground truth in each block's eigenbasis, shapes (d_i,)."""
        return tuple(u.T @ b for (_, u), b in zip(self.eigh, self._betas))

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, seed: int = 0, *, sigma2: float | None = None) -> BlockSample:
        """Draw ``n`` samples: expert labels, clean and noisy features, targets.

        ``sigma2`` overrides the model's noise variance (e.g. a test-time ``sigma_o^2``).
        """
        n = v.check_size(v.check_int(n, "n", lower=1), self.d, "n")
        s2 = self._sigma2 if sigma2 is None else v.check_scalar(sigma2, "sigma2", lower=0.0)
        rng = v.check_random_state(seed)
        z = rng.choice(self.k, size=n, p=self._p)
        x = np.zeros((n, self.d))
        for i in range(self.k):
            rows = np.flatnonzero(z == i)
            if rows.size:
                x[rows, self.block_slice(i)] = self.sample_block(i, rows.size, rng)
        xbar = x + rng.normal(0.0, np.sqrt(s2), size=x.shape)
        return BlockSample(x=x, xbar=xbar, y=x @ self.beta, z=z)

    def sample_block(self, i: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` clean draws ``x_i ~ N(0, Sigma_i)``, shape (n, d_i)."""
        lam, u = self.eigh[i]
        g = rng.standard_normal((n, lam.size))
        return (g * np.sqrt(lam)) @ u.T

    def __repr__(self) -> str:
        return f"BlockModel(k={self.k}, dims={self.dims}, p={np.round(self._p, 4).tolist()}, sigma2={self._sigma2:g})"


def check_model(model) -> BlockModel:
    """Return ``model`` if it is a :class:`BlockModel`, else raise ``TypeError`` naming the parameter."""
    if not isinstance(model, BlockModel):
        raise TypeError(f"model must be a BlockModel, got {type(model).__name__}")
    return model


def haar_orthogonal(n: int, r: int | None = None, seed=None) -> np.ndarray:
    """A Haar-distributed ``n x r`` matrix with orthonormal columns (``r = n``: an orthogonal matrix).

    QR of a Gaussian matrix with the sign fix that makes the distribution exactly Haar. ``seed`` is an
    int, ``None`` or a ``numpy.random.Generator``.
    """
    n = v.check_int(n, "n", lower=1)
    r = n if r is None else v.check_int(r, "r", lower=1, upper=n)
    q, rr = np.linalg.qr(v.check_random_state(seed).standard_normal((n, r)))
    return q * np.sign(np.diag(rr))


def first_probability(k: int, p1: float) -> np.ndarray:
    """Routing probabilities ``[p_1, (1 - p_1)/(k - 1), ...]``: expert 1's share, the rest uniform (k >= 2)."""
    k = v.check_int(k, "k", lower=2)
    p1 = v.check_scalar(p1, "p1", lower=0.0, upper=1.0, lower_inclusive=False, upper_inclusive=False)
    return np.r_[p1, np.full(k - 1, (1.0 - p1) / (k - 1))]


def with_p1(model: BlockModel, p1: float) -> BlockModel:
    """``model`` with ``p_1 = p1`` and the remaining mass spread uniformly over the other experts."""
    model = check_model(model)
    if model.k == 1:
        v.check_scalar(p1, "p1", lower=1.0, upper=1.0)
        return model
    return model.replace(p=first_probability(model.k, p1))


def random_model(seed: int, k: int | None = None, sigma2: float | None = None) -> BlockModel:
    """A random valid block model for checks: k in 2-4 blocks of dims 1-5, Haar-rotated spectra in
    [0.1, 5], Dirichlet(1) probabilities, sigma^2 in [0.05, 2], beta_scale 1.5 -- all from ``seed``."""
    rng = np.random.default_rng(v.check_seed(seed))
    k = int(rng.integers(2, 5)) if k is None else v.check_int(k, "k", lower=1)
    spectra = [rng.uniform(0.1, 5.0, size=int(rng.integers(1, 6))) for _ in range(k)]
    p = rng.dirichlet(np.ones(k))
    s2 = float(rng.uniform(0.05, 2.0)) if sigma2 is None else sigma2
    return BlockModel.from_spectra(spectra, p=p, sigma2=s2, beta_scale=1.5, seed=seed)
