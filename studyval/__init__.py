"""studyval: validation statistics and registered-protocol reports for imaging AI.

The statistics live in :mod:`studyval.analysis` (pure functions returning frozen
result objects), the imaging pipelines in :mod:`studyval.models`, the data
dictionaries in :mod:`studyval.data_dictionary` and the Quarto reports with
their analysis plans in :mod:`studyval.reports`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
