"""``python -m bakery`` is the ``bakery`` console script."""

from bakery.program import program

program.run()
