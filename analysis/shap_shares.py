r"""Share of each modality in the mean absolute Shapley contribution, with a (cluster) bootstrap.

For explained cases :math:`i = 1..n`, class :math:`c` and modality :math:`g`
with contributions :math:`\phi_{icg}`, the share of modality :math:`g` is

.. math::

    s_{cg} = \frac{\sum_i |\phi_{icg}|}{\sum_i \sum_h |\phi_{ich}|},

the ratio that :meth:`studyval.analysis.shapley.GroupShapleyResult.to_frame`
reports as ``share``. Its sampling uncertainty over the explained cases is a
percentile bootstrap of cases, or of patients when a patient contributes
several cases (knees), from :func:`studyval.analysis.resampling.bootstrap_many`
(resample :math:`r` gives case :math:`i` the weight :math:`w_{ri}`, the count of
its patient in the resample, and :math:`s^*_{cg} = \sum_i w_{ri}|\phi_{icg}| /
\sum_i\sum_h w_{ri}|\phi_{ich}|`). The interval covers the sampling of the
explained cases only; the model is held fixed (not refitted), so it does not
cover the uncertainty of the fitted model itself.

Shares of two models are comparable in kind only when their Shapley values
are: TreeSHAP (path-dependent, conditional on the tree paths, log-odds scale)
and the interventional group Shapley values of an SVM (marginal over a
background sample, decision-value scale) answer different questions; the
report says so beside them.

Oracle: the same resample counts (``resampling_weights``) written out and
the ratio and ``quantile(type = 7)`` computed in R 4.2; the calls are in
``tests/test_shap_shares.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from studyval.analysis._checks import check_alpha
from studyval.analysis.resampling import bootstrap_many
from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

__all__ = ["ModalityShareResult", "modality_shares"]


@dataclasses.dataclass(frozen=True, eq=False)
class ModalityShareResult(Result):
    """Modality shares of the mean absolute Shapley contribution with bootstrap intervals.

    Attributes
    ----------
    table : pandas.DataFrame
        ``class, modality, share, ci_low, ci_high, se`` per class and modality
        (also :meth:`to_frame`).
    n : int
        Explained cases.
    n_clusters : int
        Resampled units (patients with clusters, else cases).
    n_resamples : int
    ci_level : float
    method : str
    """

    table: pd.DataFrame = dataclasses.field(repr=False)
    n: int
    n_clusters: int
    n_resamples: int
    ci_level: float
    method: str

    def to_frame(self) -> pd.DataFrame:
        """The per-class, per-modality table (a copy)."""
        return self.table.copy()


def modality_shares(
    contributions: Any,
    *,
    classes: Sequence[Any],
    groups: Sequence[str],
    clusters: Any = None,
    n_resamples: int,
    seed: int,
    alpha: float = 0.05,
) -> ModalityShareResult:
    r"""Modality shares :math:`s_{cg}` with percentile (cluster) bootstrap intervals.

    Parameters
    ----------
    contributions : array-like, shape (n, K, G)
        Shapley contribution of each modality for each case and class
        (``GroupShapleyResult.contributions``).
    classes : sequence
        The K class labels (middle axis).
    groups : sequence of str
        The G modality names (last axis).
    clusters : array-like, shape (n,), optional
        Patient id of every case; the bootstrap resamples patients.
    n_resamples : int
        Bootstrap resamples (at least 2).
    seed : int
        Seed of the bootstrap.
    alpha : float, default 0.05
        Intervals at level ``1 - alpha``.

    Returns
    -------
    ModalityShareResult

    Raises
    ------
    StudyvalError
        A wrong shape or non-finite contributions; labels of the wrong length.
    EstimationError
        A class whose contributions are all 0 (its shares are undefined).

    Examples
    --------
    >>> phi = np.array([[[1.0, -1.0]], [[3.0, 0.0]]])  # 2 cases, 1 class, 2 modalities
    >>> r = modality_shares(phi, classes=["a"], groups=["image", "lab"], n_resamples=50, seed=1)
    >>> r.to_frame()["share"].tolist()
    [0.8, 0.2]

    """
    alpha = check_alpha(alpha)
    phi = np.asarray(contributions, dtype=np.float64)
    if phi.ndim != 3:
        raise StudyvalError(f"contributions must have shape (n, K, G), got {phi.shape}")
    n, k, g = phi.shape
    if len(classes) != k or len(groups) != g:
        raise StudyvalError(
            f"contributions has {k} classes and {g} modalities; got {len(classes)} class labels "
            f"and {len(groups)} modality names"
        )
    if not np.isfinite(phi).all():
        raise StudyvalError("contributions must be finite")
    a = np.abs(phi).reshape(n, k * g)
    totals = np.abs(phi).sum(axis=2)  # (n, K)
    if (totals.sum(axis=0) == 0).any():
        c = int(np.flatnonzero(totals.sum(axis=0) == 0)[0])
        raise EstimationError(f"class {classes[c]!r}: every contribution is 0; no share")
    denom_index = np.repeat(np.arange(k), g)

    def shares(w: np.ndarray) -> np.ndarray:
        """(b, K*G): the share of every class and modality for each weight row."""
        num = w @ a
        den = (w @ totals)[:, denom_index]
        with np.errstate(invalid="ignore", divide="ignore"):
            return num / den

    names = [f"{c}|{m}" for c in classes for m in groups]
    boot = bootstrap_many(
        shares,
        names=names,
        n_rows=n,
        clusters=clusters,
        n_resamples=n_resamples,
        seed=seed,
        alpha=alpha,
        method="percentile",
    )
    rows = []
    for j, r in enumerate(boot.results):
        rows.append(
            {
                "class": str(classes[j // g]),
                "modality": groups[j % g],
                "share": r.estimate,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "se": r.se,
            }
        )
    unit = "patient" if clusters is not None else "case"
    return ModalityShareResult(
        table=pd.DataFrame(rows),
        n=n,
        n_clusters=int(boot.n_clusters),
        n_resamples=int(n_resamples),
        ci_level=1 - alpha,
        method=f"share of mean |SHAP|; {unit}-level percentile bootstrap, model held fixed",
    )
