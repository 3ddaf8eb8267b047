"""``python -m todo_dev.deploy``."""

import sys

from .cli import main

sys.exit(main())
