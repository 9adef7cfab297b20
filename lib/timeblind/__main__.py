import sys

from timeblind.cli import main

sys.exit(main())
