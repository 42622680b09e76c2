"""Jinja2 templates of every rendered artefact; a package only so that they ship inside the wheel."""
