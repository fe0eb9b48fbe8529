"""YAML text parsed once per process: plans and data dictionaries are read again on every run.

A command-line process reads one plan and one dictionary, but a process that runs many
studies or checks (a notebook, the test suite: a ``studyval run`` per case in process) reads
the same shipped files again and again, and PyYAML's pure-Python parser takes about 50 ms for
a plan. :func:`safe_load` parses each distinct text once and returns a deep copy of the result,
so a caller that changes what it got never changes what the next caller gets.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

import yaml

__all__ = ["safe_load"]


@lru_cache(maxsize=64)
def _parsed(text: str) -> Any:
    return yaml.safe_load(text)


def safe_load(text: str) -> Any:
    """``yaml.safe_load(text)``, parsed once per distinct text in this process.

    Parameters
    ----------
    text : str
        A YAML document.

    Returns
    -------
    Any
        A deep copy of what ``yaml.safe_load`` returns for ``text`` (shared nodes stay
        shared within the copy, as YAML anchors make them).

    Raises
    ------
    yaml.YAMLError
        ``text`` is not valid YAML (raised on every call: failures are not remembered).

    """
    return copy.deepcopy(_parsed(text))
