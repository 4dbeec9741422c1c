"""Layer 7 (above the apartments, below the runtime): apartments in other processes. A node
per process (identity, key, listener, exported objects), connections driven by the apartments'
own loops, proxies to remote objects, and the servers that host aptio runtimes (COM's local
server). Speaks the protocol of ``aptio._wire``."""
