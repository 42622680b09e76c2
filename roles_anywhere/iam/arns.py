"""ARN shapes of the resources this project creates; a light module, so `credential-process` starts fast."""

from __future__ import annotations

import re

_PARTITION = r"aws(?:-cn|-us-gov|-iso(?:-[a-z])?|-eusc)?"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_REGION = r"[a-z]{2}(?:-[a-z]+)+-\d+"
TRUST_ANCHOR_ARN = re.compile(
    rf"arn:(?P<partition>{_PARTITION}):rolesanywhere:(?P<region>{_REGION}):(?P<account>\d{{12}}):trust-anchor/{_UUID}"
)
PROFILE_ARN = re.compile(
    rf"arn:(?P<partition>{_PARTITION}):rolesanywhere:(?P<region>{_REGION}):(?P<account>\d{{12}}):profile/{_UUID}"
)
ROLE_ARN = re.compile(
    rf"arn:(?P<partition>{_PARTITION}):iam::(?P<account>\d{{12}}):role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{{1,64}}"
)
