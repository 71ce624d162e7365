"""restudy: reproduce the claims of deep-learning papers under controlled randomness.

A study (YAML) declares a paper's claims, its reported numbers and the experiments that produce
them; restudy runs the experiments over many seeds, compares reproduced and reported numbers and
gives noise-aware verdicts per claim.
"""

__version__ = "0.1.0"
