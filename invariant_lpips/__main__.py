import sys

from invariant_lpips.cli import main

sys.exit(main())
