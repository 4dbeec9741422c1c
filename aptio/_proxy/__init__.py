"""Layer 6: proxies and stubs (COM: proxy and stub managers), sending a call, and by-reference
marshaling of coclass instances. Imports only the layers below it."""
