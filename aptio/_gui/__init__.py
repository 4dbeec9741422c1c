"""The GUI-host layer: a GUI toolkit's own event loop drives its thread, and an asyncio loop runs
inside it in steps, adopted as aptio's main STA.

:mod:`aptio.tk` and :mod:`aptio.qt` are thin adapters over this package. What they share:

* :mod:`.toolkit`: the few things a host needs from a toolkit (watch one file descriptor, one
  timer, an idle callback, run and quit its loop, report an error, hide the windows);
* :mod:`.stepping`: the asyncio loop and selector that run in steps, and the driver that steps
  them from the toolkit's callbacks (the wake-up, timer and fairness rules are written there);
* :mod:`.app`: one application's state (main task, spawned tasks, close and Ctrl+C handling)
  and the run skeleton.

Nothing here imports a toolkit: the adapters do, lazily.
"""
