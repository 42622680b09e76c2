"""The Teleport SPIFFE CA bundle: validation, SPIFFE bundle JSON, and every source it comes from."""
