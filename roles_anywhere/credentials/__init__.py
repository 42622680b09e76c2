"""Turning an SVID into AWS credentials: X.509 SigV4 and the credential-process command."""
