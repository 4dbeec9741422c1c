"""Layer 2 (beside ``_threads``): aptio's wire protocol, independent of how bytes travel: the
messages as small value types, their framing, and the authenticating handshake. Imports only
``_values``; nothing here unpickles anything (see ``docs/protocol.md``)."""
