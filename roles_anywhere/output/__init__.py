"""Writing rendered files into an output folder: atomic, never through a link, never a stranger's file."""
