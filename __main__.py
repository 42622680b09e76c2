"""Pulumi program entry point. The program ships inside the package (``roles_anywhere.components``)."""

from roles_anywhere.components.program import run, tune_collector

tune_collector()
run()
