"""Suite-wide settings.

Hypothesis draws the same examples on every run of the suite (so CI never
fails on a new draw by chance); `FASTGW_HYPOTHESIS_RANDOM=1` draws new ones,
and `make fuzz` searches for much longer.
"""

import os

from hypothesis import settings

settings.register_profile("suite", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False, database=None)
settings.load_profile("explore" if os.environ.get("FASTGW_HYPOTHESIS_RANDOM") else "suite")
