"""The original's next steps, measured: python scripts/compare.py --out DIR [--seeds 0 1 2]"""

import sys

from lit_mnist.compare import main

if __name__ == "__main__":
    sys.exit(main())
