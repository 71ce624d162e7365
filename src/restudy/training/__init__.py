"""Training one run (or one stack of runs) from its spec: the one shared training loop and what it
is built from.

``build`` makes a run's parts (data, model, optimizer, schedule, generators, augmentation, method
hook); ``loop`` is the single-run loop and what both loops share, ``loop_stacked`` the loop of K
tiny models trained as one (``stacked_model``); ``optim`` (optimizers, schedules), ``batches``
(batch iteration and augmentation), ``evaluate``, ``tta``, ``perturb`` and ``devices`` (device,
mixed precision, compile, TF32).
"""
