"""Import before torch: gives a benchmark's process the OpenMP settings ``jepa-tui train`` runs with.

``jepa-tui train`` fixes the OpenMP thread count and a short spin before a waiting thread sleeps (``GOMP_SPINCOUNT``)
before torch starts OpenMP (:func:`jepa_tui.threads.prepare_environment`). A benchmark that times the trainer in its
own process must do the same, or it times a configuration nobody trains with: with libgomp's own waiting, Track A's
step on 2 vCPUs took 22.5 ms instead of 20.2. ``--openmp-defaults`` on the command line keeps libgomp's own settings,
to measure what they cost. Values the user exported are kept either way.
"""

from __future__ import annotations

import sys

from jepa_tui.threads import prepare_environment

DEFAULTS_FLAG = "--openmp-defaults"
HELP = "keep libgomp's own thread waiting instead of the GOMP_SPINCOUNT jepa-tui train sets (jepa_tui.threads)"

if DEFAULTS_FLAG not in sys.argv:
    prepare_environment()

