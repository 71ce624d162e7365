"""How evidence is written and drawn, for claim kinds and the report alike: numbers in sentences
(``numbers``), table cells (``tables``) and the drawing primitives of every figure (``draw``).
Nothing here computes a statistic.
"""
