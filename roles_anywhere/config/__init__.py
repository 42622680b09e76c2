"""The stack config: its model and field rules, names, SPIFFE IDs, and reading stack files."""
