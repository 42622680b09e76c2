"""Pulumi ComponentResources: wiring only. Every document and name comes from ``roles_anywhere``."""
