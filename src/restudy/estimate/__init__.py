"""``restudy plan``: what running a study will cost and how many seeds its claims need.

``calibrate`` times each distinct task the executor would make, ``cost`` places the tasks on the
workers and extrapolates, ``planfile`` keeps the estimate beside the actual time, ``pilots``
compares finished pilot runs with the claims (the seeds each inconclusive one needs).
"""
