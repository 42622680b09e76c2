"""The Teleport half of the chain of grants: who may obtain which SVID, what was granted, apply.py."""
