"""Layer 2: threads, event loops and the cross-thread transport. Imports only ``_values``."""
