"""`python -m maas`: the same as the `maas` command."""

from maas.cli import main

main()
