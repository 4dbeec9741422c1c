"""Layer 5: admission, what decides whether a call may start: reentrancy gates with deadlock
detection, and message filters. Plugs into the call through the hooks of
:mod:`aptio._call.contract`; imports only the layers below it."""
