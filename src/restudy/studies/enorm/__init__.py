"""Equi-normalization (Stock et al., ICLR 2019): the study's parts.

The fully-connected net (``restudy.models.fc``) and the ENorm method (``restudy.methods.enorm``)
are general enough to live in the engine's registries; this study adds no parts of its own. The
module exists so the study file can name it, as a user's study names the module with its models.
"""
