"""Lightsout's model engine: base models, the vLLM server, training data, LoRA training and adapter bundles.

Pure Python on top of torch, transformers, PEFT and vLLM; nothing here imports Django, so training can run in any
worker process and the code can be tested without a database.
"""

import os

# Measured on the 2-core machines: when other processes compete for the cores, OpenMP's default spin-waiting made
# torch 3-5x slower (a thread spins at a barrier while its partner is descheduled). Passive waiting removes that and
# costs nothing measurable on an idle machine. OpenMP reads this once, when torch is first imported, so it only takes
# effect if this package is imported before torch; worker launchers should set it in their environment too.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
