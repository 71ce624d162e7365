"""What a run leaves behind and how it is kept: safe file formats (``safeio``), the output layout
(``artifacts``), the environment record (``env``), the run record's schema (``record``) and the
SQLite store the driver alone writes (``store``).
"""
