"""Layer 7: the apartments. ``base`` (what every kind shares, and the public
:class:`aptio.Apartment`), ``sta`` (an event loop on one thread), ``mta`` (a worker pool),
``neutral`` (the caller's own thread), ``loop_thread`` (a loop served on a dedicated thread).
Each implements :class:`aptio._call.contract.ApartmentContract`; imports only the layers below."""
