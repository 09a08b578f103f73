"""The profiled deviance of a linear mixed model, lme4's formulation, with dense algebra.

For ``y = X beta + Z b + e`` with ``b = Lambda_theta u`` (one relative SD ``theta_k``
per random term), :class:`_Model` holds the cross-products ``Z'Z, Z'X, X'X, Z'y, X'y,
y'y`` (counts, computed once) and evaluates the profiled ML and REML deviances and their
gradients in ``tau = theta^2`` (Bates et al. 2015, eqs. 34 and 41; the formulas are in
:func:`seqrob.analysis.mixed_fit.fit_mixed`). :func:`_optimise` minimises them. There
are few random effects (seeds + runs + languages), so an evaluation costs at most
``O(q^3)`` -- ``O(q_big c^2 + c^3)`` with the Schur complement of
:class:`_BlockFactor` -- independent of the number of scores.

Everything here is on the fit's internal scale (centred, times ``scale``) and knows
nothing of data frames; :mod:`~seqrob.analysis.mixed_fit` builds the inputs and reads
the results.

References
----------
Bates, D., Maechler, M., Bolker, B., & Walker, S. (2015). Fitting linear
mixed-effects models using lme4. Journal of Statistical Software, 67(1), 1-48.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import linalg, optimize

__all__: list[str] = []

# Relative tolerance of the rank checks on Gram matrices (squared norms; R's qr()
# uses 1e-7 on norms).
_RANK_TOL = 1e-10


# --- linear algebra ---------------------------------------------------------------


def _keep_columns(gram: np.ndarray) -> np.ndarray:
    """Indices of columns kept by a sequential rank check (R's qr() keeps the earlier column)."""
    kept: list[int] = []
    chol = np.zeros((0, 0))
    for j in range(gram.shape[0]):
        d = gram[j, j]
        if d <= 0:
            continue
        if kept:
            v = linalg.solve_triangular(chol, gram[kept, j], lower=True, check_finite=False)
            rest = d - v @ v
        else:
            v, rest = np.zeros(0), d
        if rest > _RANK_TOL * d:
            k = len(kept)
            new = np.zeros((k + 1, k + 1))
            new[:k, :k] = chol
            new[k, :k] = v
            new[k, k] = math.sqrt(rest)
            chol = new
            kept.append(j)
    return np.asarray(kept, dtype=np.int64)


def _crosstab(a: np.ndarray, b: np.ndarray, na: int, nb: int) -> np.ndarray:
    """Counts of rows per (a, b) level pair, rows with a or b < 0 left out: (na, nb)."""
    rows = (a >= 0) & (b >= 0)
    return np.bincount(a[rows] * nb + b[rows], minlength=na * nb).reshape(na, nb).astype(float)


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Do two codings (-1 = not in the term) group the same rows the same way?"""
    if not np.array_equal(a >= 0, b >= 0):
        return False
    used = a >= 0
    a, b = a[used], b[used]
    pairs = len(np.unique(a * (int(b.max()) + 1) + b))
    return pairs == len(np.unique(a)) == len(np.unique(b))


def _rank(gram: np.ndarray) -> int:
    if gram.size == 0:
        return 0
    values = np.linalg.eigvalsh(gram)
    return int((values > _RANK_TOL * max(values.max(), 1e-300) * gram.shape[0]).sum())


def _cholesky(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor (LAPACK potrf); LinAlgError if A is not positive definite."""
    factor, info = _POTRF(A, lower=1, clean=1, overwrite_a=0)
    if info != 0:
        raise linalg.LinAlgError("matrix is not positive definite")
    return factor


def _cho_solve(factor: np.ndarray, B: np.ndarray) -> np.ndarray:
    x, info = _POTRS(factor, B, lower=1)
    if info != 0:  # pragma: no cover (only for invalid arguments)
        raise linalg.LinAlgError(f"potrs failed ({info})")
    return x


def _cho_inverse(factor: np.ndarray) -> np.ndarray:
    """A^-1 from the lower Cholesky factor of A (LAPACK potri), both triangles filled."""
    inverse, info = _POTRI(factor, lower=1)
    if info != 0:  # pragma: no cover
        raise linalg.LinAlgError(f"potri failed ({info})")
    lower = np.tril(inverse)
    return lower + np.tril(lower, -1).T


def _lower_solve(factor: np.ndarray, B: np.ndarray) -> np.ndarray:
    x, info = _TRTRS(factor, B, lower=1)
    if info != 0:  # pragma: no cover
        raise linalg.LinAlgError(f"trtrs failed ({info})")
    return x


class _BlockFactor:
    """Factor of ``A = [[D, B], [B', C]]`` with ``D`` diagonal (``nb x nb``), by the Schur
    complement ``S = C - B' D^-1 B``: ``O(nb c^2 + c^3)`` instead of ``O(q^3)``, which
    matters when one term (languages, runs) has most of the random effects."""

    def __init__(self, A: np.ndarray, nb: int) -> None:
        self.nb = nb
        self.d = np.diag(A)[:nb].copy()
        self.logdet = float(np.log(self.d).sum())
        if nb < A.shape[0]:
            self.DinvB = A[:nb, nb:] / self.d[:, None]  # (nb, c)
            self.Lc = _cholesky(A[nb:, nb:] - A[:nb, nb:].T @ self.DinvB)
            self.logdet += 2.0 * float(np.log(np.diag(self.Lc)).sum())
        else:
            self.Lc = None

    def solve(self, R: np.ndarray) -> np.ndarray:
        R1 = R[: self.nb]
        if self.Lc is None:
            return R1 / self.d[:, None]
        Y2 = _cho_solve(self.Lc, R[self.nb :] - self.DinvB.T @ R1)
        return np.vstack([R1 / self.d[:, None] - self.DinvB @ Y2, Y2])

    def inverse(self) -> np.ndarray:
        if self.Lc is None:
            return np.diag(1.0 / self.d)
        Sinv = _cho_inverse(self.Lc)
        T = self.DinvB @ Sinv  # (nb, c)
        top = T @ self.DinvB.T
        top.flat[:: self.nb + 1] += 1.0 / self.d
        return np.block([[top, -T], [-T.T, Sinv]])


_POTRF, _POTRS, _POTRI, _TRTRS = linalg.lapack.get_lapack_funcs(("potrf", "potrs", "potri", "trtrs"), (np.zeros(1),))


# --- the model --------------------------------------------------------------------


class _Model:
    """Cross-products of one fixed-effect matrix and one set of random terms, and the deviances.

    All quantities on the internal scale (centred, times ``scale``).
    """

    def __init__(
        self,
        XtX: np.ndarray,
        Xty: np.ndarray,
        yty: float,
        n: int,
        terms: list[np.ndarray],
        cell: np.ndarray,
        T: np.ndarray,
        y: np.ndarray,
    ) -> None:
        """``terms``: per random term, each row's level (0..k-1; -1 = not in the term).
        ``X = T[cell]``, so ``Z_k' X = crosstab(level, cell) T`` and every
        cross-product is a count (bincount), never a product with an n-row matrix."""
        self.n, self.p = n, XtX.shape[0]
        self.XtX, self.Xty, self.yty = XtX, Xty, yty
        self.m = len(terms)
        sizes = [int(codes.max()) + 1 for codes in terms]
        # The largest term first: its block of Z'Z is diagonal (one level per score),
        # so A is factored by a Schur complement on the rest (see _BlockFactor).
        if terms:
            first = int(np.argmax(sizes))
            order = [first] + [k for k in range(self.m) if k != first]
        else:
            order = []
        self.nb = sizes[order[0]] if order else 0
        self.block_of = np.concatenate([np.full(sizes[k], k) for k in order]) if order else np.zeros(0, np.int64)
        self.q = len(self.block_of)
        starts = np.cumsum([0] + [sizes[k] for k in order])
        offset = {k: int(starts[i]) for i, k in enumerate(order)}
        self.G = np.zeros((self.q, self.q))
        self.ZtX = np.zeros((self.q, self.p))
        self.Zty = np.zeros(self.q)
        n_cells = T.shape[0]
        for k in range(self.m):
            ck, a = terms[k], offset[k]
            rows = ck >= 0
            self.Zty[a : a + sizes[k]] = np.bincount(ck[rows], weights=y[rows], minlength=sizes[k])
            self.ZtX[a : a + sizes[k]] = _crosstab(ck, cell, sizes[k], n_cells) @ T
            for j in range(k, self.m):
                b = offset[j]
                block = _crosstab(ck, terms[j], sizes[k], sizes[j])
                self.G[a : a + sizes[k], b : b + sizes[j]] = block
                self.G[b : b + sizes[j], a : a + sizes[k]] = block.T
        blocks = [np.flatnonzero(self.block_of == k) for k in range(self.m)]
        self.P = [self.G[:, idx] @ self.G[idx, :] for idx in blocks]  # G_.k G_k.
        self.trace_G = np.array([np.diag(self.G)[idx].sum() for idx in blocks])

    # One evaluation: everything the deviances, their gradients and the estimates need.
    def solve(self, theta: np.ndarray, *, extra: bool = False) -> dict:
        # Raw LAPACK (potrf/potrs/trtrs): this runs ~30-100 times per fit on small
        # matrices, where scipy.linalg's checking wrappers cost more than the algebra.
        lam = theta[self.block_of] if self.q else np.zeros(0)
        out: dict = {"lam": lam}
        if self.q:
            A = self.G * np.outer(lam, lam)
            A.flat[:: self.q + 1] += 1.0
            factor = _BlockFactor(A, self.nb)
            LZX = lam[:, None] * self.ZtX  # (q, p)
            LZy = lam * self.Zty  # (q,)
            sol = factor.solve(np.column_stack([LZX, LZy]))
            Ux, uy = sol[:, : self.p], sol[:, self.p]
            M = self.XtX - LZX.T @ Ux
            b = self.Xty - LZX.T @ uy
            yVy = self.yty - LZy @ uy
            out.update(factor=factor, Ux=Ux, uy=uy, logdetA=factor.logdet)
        else:
            M, b, yVy = self.XtX, self.Xty, self.yty
            out["logdetA"] = 0.0
        RX = _cholesky(M)
        beta = _cho_solve(RX, b[:, None])[:, 0]
        r2 = yVy - b @ beta
        out.update(M=M, RX=RX, beta=beta, r2=r2, logdetM=2.0 * float(np.log(np.diag(RX)).sum()))
        if extra and self.q:
            # Gradient pieces per random-effect column, in tau = theta^2 (see _Model.profiled):
            # s = Z' V^-1 (y - X beta), W = Z' V^-1 X, diag(Z' V^-1 Z) = diag(G - G Lam A^-1 Lam G).
            u = uy - Ux @ beta
            s = self.Zty - self.ZtX @ beta - self.G @ (lam * u)
            # tr(Z_k' V^-1 Z_k) = tr(G_kk) - <A^-1, Lam G_.k G_k. Lam>, with G_.k G_k. precomputed.
            Ainv_LL = out["factor"].inverse() * np.outer(lam, lam)
            d_logA = self.trace_G - np.array([np.vdot(Ainv_LL, P) for P in self.P])
            W = self.ZtX - (self.G * lam[None, :]) @ Ux
            Q = _lower_solve(RX, W.T)  # (p, q)
            out.update(
                W=W,
                d_logA=d_logA,  # d log|A| / d tau_k
                d_r2=-self._blocksum(s * s),  # d r^2 / d tau_k
                d_logM=-self._blocksum((Q * Q).sum(axis=0)),  # d log|M| / d tau_k
            )
        return out

    def _blocksum(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.block_of, weights=values, minlength=self.m)

    def profiled(self, tau: np.ndarray, reml: bool) -> tuple[float, np.ndarray]:
        """Profiled deviance (-2 log-likelihood at the best beta and sigma) and its gradient in tau = theta^2.

        Optimising over tau (variance ratios) and not theta keeps the boundary honest:
        the deviance is even in theta, so theta = 0 is always a stationary point, while
        the derivative in tau at 0 is the curvature and says whether 0 is a minimum.
        """
        theta = np.sqrt(np.maximum(tau, 0.0))
        o = self.solve(theta, extra=True)
        nn = self.n - self.p if reml else self.n
        r2 = max(o["r2"], 1e-300)
        dev = o["logdetA"] + nn * (1.0 + math.log(2.0 * math.pi * r2 / nn))
        if reml:
            dev += o["logdetM"]
        if not self.q:
            return dev, np.zeros(0)
        grad = o["d_logA"] + nn * o["d_r2"] / r2
        if reml:
            grad = grad + o["d_logM"]
        return dev, grad

    def full_gradient(self, phi: np.ndarray, reml: bool, active: np.ndarray) -> np.ndarray:
        """Gradient of the deviance in ``phi = (theta[active], sigma)`` (not profiled)."""
        theta = np.zeros(self.m)
        theta[active] = phi[:-1]
        sigma = phi[-1]
        nn = self.n - self.p if reml else self.n
        o = self.solve(theta, extra=True)
        g_sigma = 2.0 * nn / sigma - 2.0 * o["r2"] / sigma**3
        if not self.q:
            return np.array([g_sigma])
        g_tau = o["d_logA"] + o["d_r2"] / sigma**2
        if reml:
            g_tau = g_tau + o["d_logM"]
        g = 2.0 * theta * g_tau  # d/d theta = 2 theta d/d tau
        return np.concatenate([g[active], [g_sigma]])


def _optimise(model: _Model, reml: bool) -> tuple[np.ndarray, float, bool]:
    """Minimise the profiled deviance over theta >= 0 (L-BFGS-B, analytic gradient)."""
    if model.m == 0:
        return np.zeros(0), model.profiled(np.zeros(0), reml)[0], True
    # Optimised over tau = theta^2 >= 0 (see _Model.profiled).

    def run(start: np.ndarray):
        return optimize.minimize(
            model.profiled, start, args=(reml,), jac=True, method="L-BFGS-B",
            bounds=[(0.0, None)] * model.m, options={"ftol": 1e-12, "gtol": 1e-8, "maxiter": 2000},
        )  # fmt: skip

    best = run(np.ones(model.m))
    # In tau the boundary is honest: tau_k = 0 is a minimum in k iff the derivative
    # there is >= 0 (Karush-Kuhn-Tucker). Should the optimiser stop at 0 with a
    # negative derivative, restart it off the boundary.
    for _ in range(3):
        grad = model.profiled(best.x, reml)[1]
        stuck = np.flatnonzero((best.x < 1e-12) & (grad < 0))
        if not len(stuck):
            break
        start = best.x.copy()
        start[stuck] = 0.25
        other = run(start)
        if other.fun < best.fun:
            best = other
    tau = np.where(best.x < 1e-14, 0.0, best.x)
    dev, grad = model.profiled(tau, reml)
    projected = np.where(tau > 0, grad, np.minimum(grad, 0.0))
    converged = bool(np.all(np.abs(projected) * np.maximum(tau, 1.0) < 1e-3))
    return np.sqrt(tau), dev, converged
