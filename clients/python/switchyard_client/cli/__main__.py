"""`python -m switchyard_client.cli ...` is the `switchyard` command."""

import sys

from switchyard_client.cli import main

sys.exit(main())
