import sys

from bia_acq.cli import main

sys.exit(main())
