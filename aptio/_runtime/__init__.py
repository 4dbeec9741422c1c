"""Layer 8: the runtime. One per process at a time: its apartments, the creation matrix
applied, the entry points that start and stop it (``run``, ``main_sta``), and debug mode."""
