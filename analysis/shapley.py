r"""Modality-level Shapley attributions: how much each modality moved each decision.

Two exact methods, one per model family (no ``shap`` package needed):

* :func:`tree_group_shap` (XGBoost): exact TreeSHAP feature contributions
  (Lundberg et al. 2020, doi:10.1038/s42256-019-0138-9), from
  ``Booster.predict(..., pred_contribs=True)`` on the margin (log-odds) scale,
  **summed over the features of each modality**. By the additivity of Shapley
  values the group sums satisfy efficiency: bias + sum over modalities = margin.
  (TreeSHAP uses the trees' path-dependent conditional expectations.)
* :func:`group_shapley` (any model, used for the SVM): the exact Shapley value
  of the game whose players are the :math:`G` modalities, with the
  interventional value function

  .. math::

      v_x(S) = \frac1B\sum_{b=1}^B f(x_S, z^{(b)}_{\bar S}),

  where :math:`z^{(b)}` are background rows and :math:`x_S` keeps the
  features of the modalities in :math:`S`. Then

  .. math::

      \phi_j(x) = \sum_{S \subseteq N\setminus\{j\}}
          \frac{|S|!\,(G-|S|-1)!}{G!}\,\{v_x(S\cup\{j\}) - v_x(S)\},

  computed exactly over all :math:`2^G` coalitions (8 for three modalities;
  Shapley 1953; Janzing, Minorics & Bloebaum 2020, arXiv:1910.13413, for the
  interventional form). Efficiency: :math:`\sum_j \phi_j(x) = f(x) - \frac1B\sum_b f(z^{(b)})`.

Both return a :class:`GroupShapleyResult` holding contributions of shape
(n, k, G) for every case, output column (class) and modality.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from math import factorial
from typing import Any

import numpy as np
import pandas as pd

from studyval.errors import StudyvalError
from studyval.results import Result

__all__ = ["GroupShapleyResult", "group_shapley", "tree_group_shap"]


def _check_groups(
    groups: Mapping[str, Sequence[int]], p: int
) -> tuple[tuple[str, ...], list[np.ndarray]]:
    names = tuple(groups)
    if not names:
        raise StudyvalError("groups must name at least one modality")
    idx = [np.asarray(groups[g], dtype=np.int64) for g in names]
    flat = np.concatenate(idx) if idx else np.array([], dtype=np.int64)
    if len(flat) != p or sorted(flat.tolist()) != list(range(p)):
        raise StudyvalError(
            f"groups must partition the {p} feature columns (each in exactly one modality); got {sorted(flat.tolist())}"
        )
    return names, idx


@dataclasses.dataclass(frozen=True, eq=False)
class GroupShapleyResult(Result):
    r"""Shapley contributions of feature groups (modalities).

    Attributes
    ----------
    groups : tuple of str
        Modality names, in the order of the last axis of ``contributions``.
    classes : tuple
        Output columns (classes), in the order of the middle axis.
    contributions : numpy.ndarray, shape (n, k, G)
        :math:`\phi` of each modality for each case and class.
    base : numpy.ndarray, shape (n, k)
        The value with no modality known (TreeSHAP bias; mean background output).
    output : numpy.ndarray, shape (n, k)
        The explained output (margin or decision value); equals ``base +
        contributions.sum(-1)`` (efficiency).
    method : str
    scale : str
        What the output is (``"margin (log-odds)"``, ``"SVM decision value"``).
    """

    groups: tuple[str, ...]
    classes: tuple[Any, ...]
    contributions: np.ndarray = dataclasses.field(repr=False)
    base: np.ndarray = dataclasses.field(repr=False)
    output: np.ndarray = dataclasses.field(repr=False)
    method: str
    scale: str

    def efficiency_gap(self) -> float:
        """Largest |output - base - sum of contributions| (0 up to rounding)."""
        return float(np.max(np.abs(self.output - self.base - self.contributions.sum(-1))))

    def to_frame(self) -> pd.DataFrame:
        """Mean |phi| per class and modality, and its share of the class total.

        Columns ``class, modality, mean_abs, share, n, method, scale``.
        """
        mean_abs = np.abs(self.contributions).mean(axis=0)  # (k, G)
        rows = []
        for c, cls in enumerate(self.classes):
            tot = mean_abs[c].sum()
            for g, name in enumerate(self.groups):
                rows.append(
                    {
                        "class": str(cls),
                        "modality": name,
                        "mean_abs": float(mean_abs[c, g]),
                        "share": float(mean_abs[c, g] / tot) if tot > 0 else float("nan"),
                        "n": int(self.contributions.shape[0]),
                        "method": self.method,
                        "scale": self.scale,
                    }
                )
        return pd.DataFrame(rows)

    def decisions(self, predicted: Any) -> pd.DataFrame:
        """Per decision: the contributions to the predicted class's output, summarised.

        Parameters
        ----------
        predicted : array-like of int, shape (n,)
            Index (into ``classes``) of each case's predicted class.

        Returns
        -------
        DataFrame
            One row per predicted class and modality: ``class, modality,
            n_decisions, mean_contribution, mean_abs, n_dominant`` (cases where
            the modality has the largest |phi| for that decision).
        """
        pred = np.asarray(predicted, dtype=np.int64)
        phi = self.contributions[np.arange(len(pred)), pred, :]  # (n, G)
        dom = np.argmax(np.abs(phi), axis=1)
        rows = []
        for c, cls in enumerate(self.classes):
            m = pred == c
            for g, name in enumerate(self.groups):
                rows.append(
                    {
                        "class": str(cls),
                        "modality": name,
                        "n_decisions": int(m.sum()),
                        "mean_contribution": float(phi[m, g].mean()) if m.any() else float("nan"),
                        "mean_abs": float(np.abs(phi[m, g]).mean()) if m.any() else float("nan"),
                        "n_dominant": int((dom[m] == g).sum()),
                    }
                )
        return pd.DataFrame(rows)


def tree_group_shap(
    booster: Any, X: Any, *, groups: Mapping[str, Sequence[int]], classes: Sequence[Any]
) -> GroupShapleyResult:
    """Exact TreeSHAP of an XGBoost model, summed within each modality.

    Parameters
    ----------
    booster : xgboost.Booster or XGBClassifier
        Fitted multi-class (``multi:softprob``) model.
    X : array-like, shape (n, p)
    groups : mapping of str to column indices
        A partition of the ``p`` columns into modalities.
    classes : sequence
        The ``k`` classes (output columns).

    Returns
    -------
    GroupShapleyResult
        On the margin (log-odds) scale; ``output`` is the raw margin.
    """
    import xgboost as xgb

    bst = booster.get_booster() if hasattr(booster, "get_booster") else booster
    X = np.asarray(X, float)
    names, idx = _check_groups(groups, X.shape[1])
    dm = xgb.DMatrix(X)
    contrib = np.asarray(bst.predict(dm, pred_contribs=True), float)
    margin = np.asarray(bst.predict(dm, output_margin=True), float)
    k = len(classes)
    if contrib.ndim == 2:  # binary: (n, p + 1)
        contrib = contrib[:, None, :]
        margin = margin[:, None]
    if contrib.shape[1] != k:
        raise StudyvalError(f"the model has {contrib.shape[1]} outputs, classes names {k}")
    phi = np.stack([contrib[:, :, i].sum(axis=2) for i in idx], axis=2)
    return GroupShapleyResult(
        groups=names,
        classes=tuple(classes),
        contributions=phi,
        base=contrib[:, :, -1],
        output=margin,
        method="TreeSHAP (exact, path-dependent), summed within modality",
        scale="margin (log-odds)",
    )


def group_shapley(
    f: Callable[[np.ndarray], np.ndarray],
    X: Any,
    background: Any,
    *,
    groups: Mapping[str, Sequence[int]],
    classes: Sequence[Any],
    scale: str = "model output",
) -> GroupShapleyResult:
    """Exact interventional Shapley values of feature groups (all 2^G coalitions).

    Parameters
    ----------
    f : callable
        ``f(rows) -> outputs``, shape (m, p) -> (m, k); deterministic.
    X : array-like, shape (n, p)
        Cases to explain.
    background : array-like, shape (B, p)
        Background rows standing in for "modality unknown".
    groups : mapping of str to column indices
        A partition of the columns into G modalities (G <= 10).
    classes : sequence
        Output columns.
    scale : str
        Name of the output scale, for the tables.

    Returns
    -------
    GroupShapleyResult
    """
    X = np.asarray(X, float)
    Z = np.asarray(background, float)
    if Z.ndim != 2 or Z.shape[1] != X.shape[1] or len(Z) == 0:
        raise StudyvalError(
            f"background must have shape (B, {X.shape[1]}) with B >= 1, got {Z.shape}"
        )
    names, idx = _check_groups(groups, X.shape[1])
    G = len(names)
    if G > 10:
        raise StudyvalError(f"{G} groups: exact enumeration of 2^G coalitions is too costly")
    n, B = len(X), len(Z)
    k = len(classes)
    value: dict[int, np.ndarray] = {}
    for mask in range(2**G):
        rows = np.repeat(Z[None, :, :], n, axis=0)  # (n, B, p)
        for g in range(G):
            if mask >> g & 1:
                rows[:, :, idx[g]] = X[:, None, idx[g]]
        out = np.asarray(f(rows.reshape(n * B, -1)), float).reshape(n, B, -1)
        if out.shape[2] != k:
            raise StudyvalError(f"f returned {out.shape[2]} outputs, classes names {k}")
        value[mask] = out.mean(axis=1)
    phi = np.zeros((n, k, G))
    for j in range(G):
        others = [g for g in range(G) if g != j]
        for size in range(G):
            w = factorial(size) * factorial(G - size - 1) / factorial(G)
            for subset in combinations(others, size):
                s = sum(1 << g for g in subset)
                phi[:, :, j] += w * (value[s | 1 << j] - value[s])
    return GroupShapleyResult(
        groups=names,
        classes=tuple(classes),
        contributions=phi,
        base=value[0],
        output=value[2**G - 1],
        method=f"exact group Shapley, interventional, {B} background rows",
        scale=scale,
    )
