"""Built-in studies: one folder each, a ``study.yaml`` (data) and a thin module registering parts."""
