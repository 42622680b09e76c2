"""Rendering every artefact from a Deployment, each value quoted for its format."""
