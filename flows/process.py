"""What a process of the hub's own sets for itself, once, at its start: its entry points call `tune_gc` — the
CLI's `main` and each flow a deployment runs (prefect.yaml). Library code (`journeyhub/`, `connectors/`,
`canonical/`) never changes interpreter-wide state; the mapping worker, a process the hub starts for itself, sets
its own policy in its entry (`journeyhub.ingest.pipeline`)."""

from __future__ import annotations

import gc
import threading

YOUNG_COLLECTION_EVERY = 50_000  # container objects allocated (net) between young collections; Python's is 700

_lock = threading.Lock()
_tuned = False


def tune_gc() -> None:
    """The cyclic garbage collector's policy for a process that syncs, tags and pushes in bulk; once per
    process (later calls, e.g. by subflows, change nothing).

    A sync allocates and drops millions of small objects, and with Python's defaults every few hundred of them
    set off a collection, whose survivors — a page being parsed, mapped and written — are promoted until a
    full collection walks the whole heap again: mostly modules, SDK models and settings that live as long as
    the process. So what is alive now is frozen out of the collector's sight, and young collections run every
    50,000 new containers instead of every 700, which lets a page's objects die before they are ever
    examined. Reference cycles are still found and freed, only later."""
    global _tuned
    with _lock:
        if _tuned:
            return
        gc.collect()
        gc.freeze()
        first, second, third = gc.get_threshold()
        gc.set_threshold(max(first, YOUNG_COLLECTION_EVERY), second, third)
        _tuned = True
