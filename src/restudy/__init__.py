"""restudy: reproduce the claims of deep-learning papers under controlled randomness.

A study (YAML) declares a paper's claims, its reported numbers and the experiments that produce
them; restudy runs the experiments over many seeds, compares reproduced and reported numbers and
gives noise-aware verdicts per claim.

The package follows the data flow: ``spec`` (study file -> typed study and settings) ->
``planning`` (runs and their seeds) -> ``execution`` (the runner, local pool, Ray, workers) ->
``training`` (building and training a run from the parts in ``data``, ``models``, ``methods``) ->
``storage`` (records, store, artifacts, environment) -> ``stats`` -> ``compare`` -> ``claims`` ->
``report`` (with ``display`` for numbers, tables and figures); ``estimate`` is ``restudy plan``,
``cli`` the commands, ``studies`` the built-in studies. A study's own code imports
:mod:`restudy.api` only; ``plugins`` is the registry behind it.
"""

__version__ = "0.1.0"
