"""From a study at one scale to its runs: experiment x variant x seed index.

``runs`` resolves each variant's settings (with provenance), plans the frozen
:class:`~restudy.planning.runs.RunSpec` of every run and its key; ``seeding`` derives each source
of randomness's seed stream per run and turns a seed into a generator.
"""
