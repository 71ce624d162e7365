"""Running the planned runs: the driver (``runner``: resume, checks before the first run, the
store), the local process pool and the stacked executor (``executor``), the Ray executor
(``ray_executor``), one run in a worker process (``worker``), a stack of seeds as one model
(``stacked``) and released weights (``weights``: export, and validation by inference).
"""
