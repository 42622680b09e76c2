"""The offline plan: the Pulumi program under deterministic mocks, and its report."""
