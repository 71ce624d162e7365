"""``python -m restudy.cli``: the command line."""

from . import app

app()
