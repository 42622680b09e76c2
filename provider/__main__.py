"""Entry point the Pulumi CLI runs for `pulumi package add`: serve the Federation component."""

from roles_anywhere.components.provider import serve

if __name__ == "__main__":
    serve()
