"""Imaging models (torch + MONAI), imported as ``studyval.models``.

The pipelines write the prediction table of ``data_dictionary/predictions.yml``.
Install with the ``models`` extra (``pip install -e ".[models]"``).

Modules (flat, so that no sub-package needs declaring; see ``models/README.md``):

* :mod:`~studyval.models.imaging` -- DICOM series / NIfTI through MONAI loaders,
  RAS orientation, spacing kept or resampled, HU windows, clear errors naming the file;
* :mod:`~studyval.models.networks` -- UNet, UNETR, SwinUNETR, DenseNet-121, ViT, VGG-16
  (2-D and 3-D) from ``spatial_dims`` / ``in_channels`` / ``out_channels``;
* :mod:`~studyval.models.config` -- MONAI-bundle-like configs in ``models/configs/<name>/``;
* :mod:`~studyval.models.splits` -- patient-level splits, leakage check;
* :mod:`~studyval.models.training` -- seeded, resumable training, DDP under torchrun;
* :mod:`~studyval.models.checkpoints` -- weights named by their SHA-256, strict loading;
* :mod:`~studyval.models.inference` -- sliding-window segmentation, per-vertebra
  classification, Grad-CAM, the prediction table;
* :mod:`~studyval.models.body_composition` -- skeletal muscle index at L3, sarcopenia;
* :mod:`~studyval.models.phantoms` -- seeded synthetic spines and L3 slices.

Only :mod:`~studyval.models.phantoms`, :mod:`~studyval.models.splits` and
:mod:`~studyval.models.body_composition` work without torch; importing this package
imports none of them.
"""
