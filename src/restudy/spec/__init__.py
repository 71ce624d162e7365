"""The study file as typed data: from YAML to a validated :class:`~restudy.spec.study.Study` and
the engine's settings.

``studyfile`` (YAML with ``file:line`` errors, includes, overrides) -> ``study`` (the root schema,
built from ``values`` (provenance, scales, a setting's value with its provenance), ``experiments``
(experiments, axes, rules, scales), ``claim_base`` (the fields every claim has, selectors, model
sets) and ``reported`` (documents and reported tables)); ``crossref`` checks the names a study
uses; ``settings`` declares every engine setting once (``constraints``: their value types) and
carries a run's resolved settings typed (:class:`~restudy.spec.settings.RunSettings`);
``tta_strategies`` is the grammar of test-time augmentation names. No torch.
"""
