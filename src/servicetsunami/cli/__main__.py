"""``python -m servicetsunami.cli``: the same as the ``tsunami`` script."""

from servicetsunami.cli.app import main

main()
