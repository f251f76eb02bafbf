import sys

from attribution_analysis.server import main

sys.exit(main())
