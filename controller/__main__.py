"""`python -m controller` is the same as the `officesec` console script."""

from controller.cli import main

raise SystemExit(main())
