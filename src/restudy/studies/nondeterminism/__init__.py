"""Nondeterminism and instability (Summers & Dinneen, ICML 2021): the study's parts.

ResNet-14/34 (``restudy.models.resnet``), the one-ULP change (``restudy.perturb``), TTA
(``restudy.tta``), snapshot schedules (``restudy.optim``) and the variability metrics
(``restudy.metrics``) are engine parts other studies can use too; this module registers nothing else.
"""
