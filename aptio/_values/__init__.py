"""Layer 1: value types and errors. Imports nothing of aptio; everything else may import it."""
