"""Offline Roles Anywhere: would this SVID get this role, and if not, why."""
