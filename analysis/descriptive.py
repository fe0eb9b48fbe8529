"""Descriptive statistics for baseline tables (STARD 20, TRIPOD+AI 20b).

:func:`baseline_table` returns a tidy long table (one row per variable, level
and group) with the numbers and a display string; the report only lays it out.
Missing values are counted per variable and group, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from studyval.errors import StudyvalError

__all__ = ["baseline_table"]

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
