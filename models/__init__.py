"""Model loading shared by the service: packaged weights, local folders or hub ids."""

import os

# CTranslate2's OpenMP runtime (libgomp) reads this once, when it loads: between the decoder's parallel regions
# its idle threads sleep instead of spinning, leaving the cores to the other decodes and the calls' analysis
# (English 6 calls on 2 cores: 95 -> 87 CPU-s, p95 end-of-speech -> final 1.48 -> 1.37 s). An operator's value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
