"""Layer 4: the call. One object per call, built by role: the contract with its apartments
(``contract``), the target side (``target``), reject-and-retry (``retry``), the waiters
(``waiters``) and the caller side users hold (``call``); per-thread state (``context``) and
``aptio.current_call()`` (``info``). Imports only the layers below it."""
