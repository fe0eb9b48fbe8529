"""Imaging models (torch + MONAI), imported as ``studyval.models``.

The pipelines write the prediction table of ``data_dictionary/predictions.yml``.
Install with the ``models`` extra (``pip install -e ".[models]"``).
"""
