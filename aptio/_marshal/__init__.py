"""Layer 6 (above the proxies): marshaling by hand, for everything handed over some other way
than a call's arguments and results (COM_SPEC M1-M3, L3): one-shot tokens, the global interface
table, callbacks, disconnect. Imports only the layers below it."""
