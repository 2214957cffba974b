"""The ``spiralarms`` command line (contract in docs/contract.md, "Command line").

One module per command group, each command thin (parse, call one library function,
print): :mod:`~spiralarms.cli.data` (synth, select, prepare, data gz2/kaggle),
:mod:`~spiralarms.cli.train`, :mod:`~spiralarms.cli.predict` (predict, evaluate,
export), :mod:`~spiralarms.cli.explain`, :mod:`~spiralarms.cli.science` (mass,
fetch-mpajhu), :mod:`~spiralarms.cli.reproduce` and :mod:`~spiralarms.cli.demo`.
:mod:`~spiralarms.cli.main` assembles them into :data:`app` and turns the errors a
user can cause into one line on standard error and exit status 1.
"""

from spiralarms.cli.main import app, run

__all__ = ["app", "run"]
