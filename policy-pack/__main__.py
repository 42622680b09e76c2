"""The policy pack's entry point: the CLI runs it as ``__main__`` and it serves the policies.

``roles-anywhere plan --policy-pack`` loads it under another name and reads ``POLICIES`` only, then
runs them behind the same pulumi-policy analyzer this process serves over gRPC.
Levels are per policy (``mandatory``, ``advisory``, ``disabled``): set them with
``pulumi preview --policy-pack-config config.json`` or ``plan --policy-config config.json``.
"""

from pulumi_policy import PolicyPack

from roles_anywhere.guard.policies import PACK_NAME, policies

POLICIES = policies()

if __name__ == "__main__":
    PolicyPack(name=PACK_NAME, policies=POLICIES)
