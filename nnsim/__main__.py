"""`python -m nnsim` runs the command line."""

from nnsim.cli import main

raise SystemExit(main())
