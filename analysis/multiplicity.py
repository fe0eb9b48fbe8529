r"""Multiplicity: adjusted p-values for a declared family of hypotheses.

:func:`adjust_p_values`
    Family-wise error control over the hypotheses of one family, by a method
    the analysis plan declares before the data are seen: Holm's step-down
    (1979), Hochberg's step-up (1988), Bonferroni, or a fixed sequence
    (hierarchical testing in a pre-specified order). Holm, Hochberg and
    Bonferroni equal R's ``p.adjust(p, method = ...)``.

A hypothesis is rejected when its adjusted p-value is at most :math:`\alpha`;
for every method here this is the same decision as the method's own
step-wise rule at level :math:`\alpha`.

References
----------
Holm S (1979). A simple sequentially rejective multiple test procedure. Scand
J Stat 6:65-70.

Hochberg Y (1988). A sharper Bonferroni procedure for multiple tests of
significance. Biometrika 75:800-802. doi:10.1093/biomet/75.4.800

Maurer W, Hothorn LA, Lehmacher W (1995). Multiple comparisons in drug
clinical trials and preclinical assays: a-priori ordered hypotheses. In:
Vollmar J (ed.), Biometrie in der chemisch-pharmazeutischen Industrie 6,
Fischer, 3-18 (the fixed-sequence procedure).

Dmitrienko A, Tamhane AC, Bretz F (2010). Multiple Testing Problems in
Pharmaceutical Statistics. Chapman & Hall/CRC, chapter 2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from studyval.errors import StudyvalError
from studyval.results import Result

from ._checks import check_alpha, check_option

__all__ = ["MULTIPLICITY_METHODS", "MultiplicityResult", "adjust_p_values"]

#: Accepted values of ``method`` in :func:`adjust_p_values`.
MULTIPLICITY_METHODS: tuple[str, ...] = ("holm", "hochberg", "bonferroni", "fixed-sequence")


@dataclasses.dataclass(frozen=True)
class MultiplicityResult(Result):
    r"""Adjusted p-values of one family of hypotheses.

    Attributes
    ----------
    method : str
        One of :data:`MULTIPLICITY_METHODS`.
    alpha : float
        Family-wise error rate controlled.
    n_hypotheses : int
        Size of the family, :math:`m`.
    n_rejected : int
        Hypotheses with adjusted p-value :math:`\le \alpha`.

    """

    method: str
    alpha: float
    n_hypotheses: int
    n_rejected: int
    _frame: pd.DataFrame = dataclasses.field(repr=False, compare=False, default=None)

    def hypotheses_frame(self) -> pd.DataFrame:
        """One row per hypothesis, in the order given: ``hypothesis, order, p_value, p_adjusted, reject``.

        ``order`` is the position in the testing order (1 = tested first):
        the declared order for ``fixed-sequence``, the rank of the raw p-value
        (ties in the order given) for the other methods.
        """
        return self._frame.copy()


def _check_p_values(p_values: Any) -> np.ndarray:
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or p.size == 0:
        raise StudyvalError(f"p_values must be a non-empty 1-d sequence, got shape {p.shape}")
    bad = ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(
            f"p_values[{i}] = {p[i]} is not a p-value in [0, 1]; an undefined test cannot enter "
            "a multiplicity adjustment"
        )
    return p


def adjust_p_values(
    p_values: Sequence[float],
    *,
    method: str,
    hypotheses: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> MultiplicityResult:
    r"""Adjusted p-values controlling the family-wise error rate of one family.

    Parameters
    ----------
    p_values : sequence of float, shape (m,)
        Raw p-values of the family, in [0, 1]. For ``fixed-sequence`` their
        order is the declared testing order (first = tested first).
    method : {"holm", "hochberg", "bonferroni", "fixed-sequence"}
        Required; the plan declares it.
    hypotheses : sequence of str, optional
        Names (default ``H1..Hm``), distinct.
    alpha : float
        Family-wise level of the ``reject`` decisions.

    Returns
    -------
    MultiplicityResult

    Notes
    -----
    With the raw p-values sorted, :math:`p_{(1)} \le \dots \le p_{(m)}`:

    .. math::

        \text{Holm: } \tilde p_{(i)} = \max_{j \le i} \min\{1, (m - j + 1) p_{(j)}\},\qquad
        \text{Hochberg: } \tilde p_{(i)} = \min_{j \ge i} \min\{1, (m - j + 1) p_{(j)}\},

    Bonferroni :math:`\tilde p_i = \min(1, m p_i)`, as R's ``p.adjust``. Fixed
    sequence in the declared order :math:`H_1, \dots, H_m`:
    :math:`\tilde p_i = \max_{j \le i} p_j` (each hypothesis is tested at the
    full :math:`\alpha` only once every earlier one is rejected).

    Examples
    --------
    >>> r = adjust_p_values([0.149, 0.100], method="holm", hypotheses=["detection", "referral"])
    >>> r.hypotheses_frame()["p_adjusted"].round(3).tolist()
    [0.2, 0.2]

    """
    method = check_option(method, MULTIPLICITY_METHODS, "method")
    alpha = check_alpha(alpha)
    p = _check_p_values(p_values)
    m = p.size
    names = [f"H{i + 1}" for i in range(m)] if hypotheses is None else [str(h) for h in hypotheses]
    if len(names) != m:
        raise StudyvalError(f"hypotheses has {len(names)} names but there are {m} p-values")
    if len(set(names)) != m:
        raise StudyvalError(f"hypotheses must be distinct, got {names}")
    if method == "fixed-sequence":
        adj = np.maximum.accumulate(p)
        order = np.arange(m)
    else:
        order = np.argsort(p, kind="stable")
        ps = p[order]
        mult = m - np.arange(m)  # m, m-1, ..., 1
        if method == "holm":
            adj_sorted = np.maximum.accumulate(np.minimum(1.0, mult * ps))
        elif method == "hochberg":
            adj_sorted = np.minimum.accumulate(np.minimum(1.0, mult * ps)[::-1])[::-1]
        else:
            adj_sorted = np.minimum(1.0, m * ps)
        adj = np.empty(m)
        adj[order] = adj_sorted
    rank = np.empty(m, dtype=int)
    rank[order] = np.arange(1, m + 1)
    reject = adj <= alpha
    frame = pd.DataFrame(
        {
            "hypothesis": names,
            "order": rank,
            "p_value": p,
            "p_adjusted": np.minimum(1.0, adj),
            "reject": reject,
        }
    )
    return MultiplicityResult(
        method=method,
        alpha=alpha,
        n_hypotheses=m,
        n_rejected=int(reject.sum()),
        _frame=frame,
    )
