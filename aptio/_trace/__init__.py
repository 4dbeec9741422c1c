"""Layer between the remote layer and the runtime: call recordings (``aptio.recording``).

``recorder`` hears of calls and waits through the hooks of the lower layers and keeps records
(``records``) in a ring buffer; ``chrome`` writes them as a Chrome trace; ``reader`` reads such
a file back, for ``summary`` and ``plot`` (``python -m aptio trace``, in ``cli``). The runtime
layer (:mod:`aptio._runtime.recording`) starts and ends recordings, here and in servers.
"""
