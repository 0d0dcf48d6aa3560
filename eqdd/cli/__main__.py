"""`python -m eqdd.cli`: the `eqdd` command."""

from eqdd.cli import main

main()
