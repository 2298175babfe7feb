"""`python -m protocode`: the command line, as the `protocode` script runs it."""

from protocode.cli import main

raise SystemExit(main())
