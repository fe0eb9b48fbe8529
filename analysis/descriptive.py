"""Descriptive statistics for baseline tables (STARD 20, TRIPOD+AI 20b) and observed means.

:func:`baseline_table` returns a tidy long table (one row per variable, level
and group) with the numbers and a display string; the report only lays it out.
:func:`group_means` gives the mean, SD and Student *t* interval of a variable
per group (observed means of repeated scores beside a model's fit).
Missing values are counted per variable and group, never dropped silently.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from studyval.errors import StatisticalWarning, StudyvalError
from studyval.results import Result

__all__ = [
    "FollowUpResult",
    "GroupMeansResult",
    "MedianRangeResult",
    "baseline_table",
    "follow_up",
    "group_means",
    "median_range",
]

OVERALL = "Overall"


def _fmt_num(x: float, digits: int) -> str:
    return "NA" if not np.isfinite(x) else f"{x:.{digits}f}"


def baseline_table(
    frame: pd.DataFrame,
    *,
    group: str | None,
    continuous: Sequence[str] = (),
    categorical: Sequence[str] = (),
    digits: int = 1,
    group_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Summarise baseline characteristics overall and by group.

    Continuous variables are summarised by mean (SD) and median [Q1, Q3];
    categorical variables by n (%) of non-missing values, every declared level
    shown (also when its count is 0). Missing values get their own row.

    Parameters
    ----------
    frame : DataFrame
        One row per unit (patient).
    group : str or None
        Column defining the groups (e.g. the reference-standard class); an
        ``"Overall"`` group is always added.
    continuous, categorical : sequence of str
        Columns to summarise.
    digits : int
        Decimals in the display strings (the numeric columns are unrounded).
    group_order : sequence of str, optional
        Order of the groups; defaults to the categorical order or sorted.

    Returns
    -------
    DataFrame
        Columns ``variable, level, statistic, group, n, value, value2, value3,
        display`` where for ``mean_sd`` rows value/value2 are mean/SD, for
        ``median_iqr`` rows value/value2/value3 are median/Q1/Q3, for
        ``n_pct`` rows value is the count and value2 the percentage of
        non-missing, and for ``missing`` rows value is the count.

    """
    for col in [*continuous, *categorical, *([group] if group else [])]:
        if col not in frame.columns:
            raise StudyvalError(f"baseline_table: column {col!r} is not in the data")
    groups: list[tuple[str, pd.DataFrame]] = [(OVERALL, frame)]
    if group is not None:
        col = frame[group]
        if group_order is None:
            if isinstance(col.dtype, pd.CategoricalDtype):
                group_order = [str(c) for c in col.cat.categories]
            else:
                group_order = sorted(col.dropna().astype(str).unique())
        for g in group_order:
            groups.append((str(g), frame[col.astype(str) == g]))
    rows: list[dict[str, object]] = []
    for gname, sub in groups:
        rows.append(
            {
                "variable": "n",
                "level": "",
                "statistic": "count",
                "group": gname,
                "n": len(sub),
                "value": float(len(sub)),
                "value2": np.nan,
                "value3": np.nan,
                "display": str(len(sub)),
            }
        )
    for var in continuous:
        for gname, sub in groups:
            x = pd.to_numeric(sub[var], errors="coerce").astype(float)
            present = x[np.isfinite(x)]
            n = len(present)
            mean = float(present.mean()) if n else np.nan
            sd = float(present.std(ddof=1)) if n > 1 else np.nan
            med, q1, q3 = (
                (
                    float(present.median()),
                    float(present.quantile(0.25)),
                    float(present.quantile(0.75)),
                )
                if n
                else (np.nan, np.nan, np.nan)
            )
            rows.append(
                {
                    "variable": var,
                    "level": "",
                    "statistic": "mean_sd",
                    "group": gname,
                    "n": n,
                    "value": mean,
                    "value2": sd,
                    "value3": np.nan,
                    "display": f"{_fmt_num(mean, digits)} ({_fmt_num(sd, digits)})",
                }
            )
            rows.append(
                {
                    "variable": var,
                    "level": "",
                    "statistic": "median_iqr",
                    "group": gname,
                    "n": n,
                    "value": med,
                    "value2": q1,
                    "value3": q3,
                    "display": f"{_fmt_num(med, digits)} [{_fmt_num(q1, digits)}, {_fmt_num(q3, digits)}]",
                }
            )
            miss = len(sub) - n
            rows.append(
                {
                    "variable": var,
                    "level": "missing",
                    "statistic": "missing",
                    "group": gname,
                    "n": len(sub),
                    "value": float(miss),
                    "value2": np.nan,
                    "value3": np.nan,
                    "display": str(miss),
                }
            )
    for var in categorical:
        col = frame[var]
        if isinstance(col.dtype, pd.CategoricalDtype):
            levels = [str(c) for c in col.cat.categories]
        else:
            levels = sorted(col.dropna().astype(str).unique())
        for gname, sub in groups:
            s = sub[var]
            present = s.dropna().astype(str)
            n = len(present)
            for level in levels:
                k = int((present == level).sum())
                pct = 100.0 * k / n if n else np.nan
                rows.append(
                    {
                        "variable": var,
                        "level": level,
                        "statistic": "n_pct",
                        "group": gname,
                        "n": n,
                        "value": float(k),
                        "value2": pct,
                        "value3": np.nan,
                        "display": f"{k} ({_fmt_num(pct, digits)}%)",
                    }
                )
            miss = len(sub) - n
            rows.append(
                {
                    "variable": var,
                    "level": "missing",
                    "statistic": "missing",
                    "group": gname,
                    "n": len(sub),
                    "value": float(miss),
                    "value2": np.nan,
                    "value3": np.nan,
                    "display": str(miss),
                }
            )
    return pd.DataFrame(rows)


@dataclasses.dataclass(frozen=True, eq=False)
class GroupMeansResult(Result):
    r"""Mean, standard deviation and Student *t* interval of a variable in each group.

    Attributes
    ----------
    value : str
        The summarised column.
    by : tuple of str
        The grouping columns.
    ci_level : float
        :math:`1 - \alpha`.
    method : str
        The interval, in words.
    """

    value: str
    by: tuple[str, ...]
    ci_level: float
    method: str
    _summary: pd.DataFrame = dataclasses.field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per group (sorted), with the ``by`` columns first.

        Columns ``<by...>, mean, sd, n, n_missing, se, ci_low, ci_high, ci_level``.
        """
        return self._summary.copy()


def group_means(
    frame: pd.DataFrame, *, value: str, by: Sequence[str], alpha: float = 0.05
) -> GroupMeansResult:
    r"""Mean of ``value`` in each group of ``by``, with its SD and Student *t* interval.

    For the :math:`n` non-missing values of a group, with mean :math:`\bar y` and
    standard deviation :math:`s` (divisor :math:`n - 1`),

    .. math::

        \bar y \pm t_{n-1,\,1-\alpha/2}\, \frac{s}{\sqrt n},

    the one-sample interval of Student (1908, doi:10.1093/biomet/6.1.1), as
    ``t.test(y, conf.level = 1 - alpha)$conf.int`` in R. The interval assumes
    independent observations within a group (one per patient).

    Parameters
    ----------
    frame : DataFrame
        One row per observation.
    value : str
        Numeric column summarised; missing values are left out and counted.
    by : sequence of str
        Grouping columns (at least one); groups appear in sorted order.
    alpha : float, default 0.05
        Two-sided error rate of the interval.

    Returns
    -------
    GroupMeansResult
        ``to_frame()``: ``<by...>, mean, sd, n, n_missing, se, ci_low, ci_high, ci_level``.

    Raises
    ------
    StudyvalError
        A column not in ``frame``, no ``by`` column, or ``alpha`` outside (0, 1).

    Warns
    -----
    StatisticalWarning
        A group with fewer than two values: its SD and interval are undefined
        (NaN; R's ``t.test`` stops with "not enough 'x' observations").

    Examples
    --------
    >>> d = pd.DataFrame({"g": ["a", "a", "a", "b", "b"], "y": [1.0, 2.0, 3.0, 4.0, 6.0]})
    >>> group_means(d, value="y", by=["g"]).to_frame()[["g", "mean", "n", "ci_low"]].round(4)
       g  mean  n  ci_low
    0  a   2.0  3 -0.4841
    1  b   5.0  2 -7.7062
    """
    by = [by] if isinstance(by, str) else list(by)
    if not by:
        raise StudyvalError("group_means: give at least one `by` column")
    for col in [value, *by]:
        if col not in frame.columns:
            raise StudyvalError(f"group_means: column {col!r} is not in the data")
    if not 0 < alpha < 1:
        raise StudyvalError(f"alpha must be in (0, 1), got {alpha}")
    y = pd.to_numeric(frame[value], errors="coerce").astype(float)
    grouped = y.groupby([frame[c] for c in by], observed=True, sort=True)
    out = grouped.agg(["mean", "std", "count", "size"]).reset_index()
    out.columns = [*by, "mean", "sd", "n", "size"]
    n = out["n"].to_numpy(np.int64)
    out["n_missing"] = out.pop("size").to_numpy(np.int64) - n
    sd = out["sd"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.where(n >= 2, sd / np.sqrt(n), np.nan)
        q = np.where(n >= 2, stats.t.ppf(1 - alpha / 2, np.maximum(n - 1, 1)), np.nan)
    mean = out["mean"].to_numpy(float)
    out["se"] = se
    out["ci_low"] = mean - q * se
    out["ci_high"] = mean + q * se
    out["ci_level"] = 1 - alpha
    for row in out.loc[n < 2, [*by, "n"]].to_dict("records"):
        keys = ", ".join(f"{c} = {row[c]}" for c in by)
        warnings.warn(
            f"group_means of {value}: {keys} has {int(row['n'])} value(s); its SD and t interval "
            "are undefined (NaN)",
            StatisticalWarning,
            stacklevel=2,
        )
    return GroupMeansResult(
        value=value,
        by=tuple(by),
        ci_level=1 - alpha,
        method="Student t interval of the mean (t.test)",
        _summary=out,
    )


@dataclasses.dataclass(frozen=True)
class MedianRangeResult(Result):
    """Median and range of a variable (missing values counted, not used).

    Attributes
    ----------
    n, n_missing : int
    median, minimum, maximum : float
    """

    n: int
    n_missing: int
    median: float
    minimum: float
    maximum: float


def median_range(values: Sequence[float] | np.ndarray | pd.Series) -> MedianRangeResult:
    """Median and range, as R's ``median(x)`` and ``range(x)`` (missing values counted apart).

    Raises
    ------
    StudyvalError
        No observed value.

    Examples
    --------
    >>> r = median_range([3, 9, 1, 14, 6, 2])
    >>> r.median, r.minimum, r.maximum
    (4.5, 1.0, 14.0)
    """
    x = pd.to_numeric(pd.Series(values), errors="raise").to_numpy(dtype=float)
    miss = np.isnan(x)
    seen = x[~miss]
    if seen.size == 0:
        raise StudyvalError("median_range: no observed value")
    return MedianRangeResult(
        n=int(seen.size),
        n_missing=int(miss.sum()),
        median=float(np.median(seen)),
        minimum=float(seen.min()),
        maximum=float(seen.max()),
    )


@dataclasses.dataclass(frozen=True)
class FollowUpResult(Result):
    """Follow-up of a cohort (TRIPOD+AI 20a, STARD 22 for time to outcome).

    Attributes
    ----------
    n : int
    median_reverse_km : float
        Median potential follow-up by reverse Kaplan-Meier (censoring as the event;
        Schemper & Smith 1996); ``nan`` when not reached.
    median_observed, minimum, maximum : float
        Of the observed follow-up times.
    total_time : float
        Sum of the follow-up times (person-time, in the time's unit).
    """

    n: int
    median_reverse_km: float
    median_observed: float
    minimum: float
    maximum: float
    total_time: float


def follow_up(
    time: Sequence[float] | np.ndarray, event: Sequence[int] | np.ndarray
) -> FollowUpResult:
    r"""Median follow-up by reverse Kaplan-Meier, observed median, range and person-time.

    The reverse Kaplan-Meier median is the median of :math:`\hat S_c(t)`, the
    Kaplan-Meier estimate with censoring as the event (Schemper & Smith 1996,
    doi:10.1016/0197-2456(96)00075-X): R's
    ``summary(survfit(Surv(time, 1 - event) ~ 1))$table["median"]``.

    Parameters
    ----------
    time : array-like
        Follow-up times, finite and ``>= 0``.
    event : array-like
        1 = event, 0 = censored.

    Returns
    -------
    FollowUpResult
    """
    from studyval.analysis.kaplan_meier import kaplan_meier

    t = np.asarray(time, dtype=float)
    e = np.asarray(event)
    if t.size == 0:
        raise StudyvalError("follow_up: no subject")
    med = kaplan_meier(t, (e == 0).astype(int)).median
    return FollowUpResult(
        n=int(t.size),
        median_reverse_km=float(med),
        median_observed=float(np.median(t)),
        minimum=float(t.min()),
        maximum=float(t.max()),
        total_time=float(t.sum()),
    )
