"""Nondeterminism and Instability (Summers & Dinneen, ICML 2021) as reproduced by the [Re] report:
the study's own claim kinds, registered on import (:mod:`.printed` for printed numbers,
:mod:`.claims` for runs):

* ``reported_arithmetic``: a ratio or difference of printed numbers lies inside (or outside) a band,
  with each number's printing rounding carried through (no runs);
* ``reported_reduction``: a printed variability reduction % follows from the printed metrics by one
  of the two formulas (no runs);
* ``train_time_within``: one experiment's training time over another's lies inside a band;
* ``variability_scaled``: a model set's overall variability over a reference set's lies inside a
  band that need not contain 1 ("about three times higher");
* ``mean_metric``: the mean of a run metric over several experiments' runs equals a printed value.
"""

from __future__ import annotations

from . import claims, printed

__all__ = ["claims", "printed"]
