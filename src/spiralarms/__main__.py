"""``python -m spiralarms`` runs the command line."""

from spiralarms.cli import run

run()
