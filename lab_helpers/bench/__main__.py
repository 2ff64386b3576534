"""``python -m lab_helpers.bench gateway``: the gateway-overhead benchmark (see docs/benchmarks.md)."""
import sys

from .gateway import main

sys.exit(main())
