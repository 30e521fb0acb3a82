"""``python -m bakery`` is the ``bakery`` console script."""

from .main import program

program.run()
