"""`python -m cnnlab` (and `torchrun -m cnnlab train ...`) runs the command-line tool."""

import sys

from cnnlab.cli import main

sys.exit(main())
