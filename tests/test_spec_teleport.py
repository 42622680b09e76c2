"""The Teleport and AWS-client keys: defaults, cross-checks, and one exact line per mistake."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from roles_anywhere.errors import ConfigError
from roles_anywhere.stack.spec import Bot, load_spec

from .certs import NOW
from .conftest import base_values


def spec_of(**changes: Any) -> Any:
    values = copy.deepcopy(base_values())
    for key, value in changes.items():
        if key.startswith("api_"):
            values["workloads"]["api"][key.removeprefix("api_")] = value
        else:
            values[key] = value
    return load_spec(values, stack="dev", base_dir=Path(), now=NOW)


def error_of(**changes: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        spec_of(**changes)
    return str(raised.value)


def test_defaults() -> None:
    spec = spec_of()
    assert spec.teleport.mode == "workload-identity"
    assert spec.teleport.proxy == "example.teleport.sh:443"
    assert spec.teleport.bots == ()
    assert (spec.aws.signing_helper, spec.aws.credentials) == ("aws_signing_helper", "process")
    api = spec.workload("api")
    assert api.svid_directory == "/opt/machine-id/api"
    assert (api.bots, api.users, api.svid_ttl) == ((), (), "1h")
    assert spec.artifacts_dir is None


def test_bots_are_collected_from_workloads_with_join_defaults() -> None:
    spec = spec_of(
        api_bots=["dev-ci-runner", "dev-deployer"],
        teleport={"proxy": "proxy.example.com", "bots": {"dev-deployer": {"joinMethod": "kubernetes"}}},
    )
    assert spec.teleport.proxy == "proxy.example.com:443"
    assert spec.teleport.bots == (
        Bot("dev-ci-runner", "token", "/etc/tbot/dev-ci-runner.token", "/var/lib/teleport/bot/dev-ci-runner"),
        Bot("dev-deployer", "kubernetes", "dev-deployer", "/var/lib/teleport/bot/dev-deployer"),
    )


def test_svid_ttl_is_normalised() -> None:
    assert spec_of(api_svidTtl="90m").workload("api").svid_ttl == "1h30m"


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        (
            {"teleport": {"mode": "modern"}},
            "teleport.mode: must be 'workload-identity' or 'legacy'",
        ),
        (
            {"teleport": {"proxy": "https://proxy.example.com"}},
            "teleport.proxy: 'https://proxy.example.com' is not HOST:PORT (no scheme or path, "
            "e.g. teleport.example.com:443)",
        ),
        ({"teleport": {"proxi": "x"}}, "teleport.proxi: unknown key (did you mean 'proxy'?)"),
        (
            {"teleport": "legacy"},
            "teleport: must be a mapping; e.g. {mode: workload-identity, proxy: teleport.example.com:443}",
        ),
        (
            {"api_svidDirectory": "svids/api"},
            "workloads.api.svidDirectory: must be an absolute folder (starting with '/'), got 'svids/api'",
        ),
        (
            {"api_svidDirectory": "/opt/a\nb"},
            "workloads.api.svidDirectory: contains the control character U+000A; "
            "a folder must be printable text",
        ),
        (
            {"api_svidDirectory": "/opt/machine-id/worker"},
            "workloads.worker.svidDirectory: '/opt/machine-id/worker' is already the SVID folder of workload "
            "'api'; each workload needs its own (the files would overwrite each other)",
        ),
        ({"api_svidDirectory": 7}, "workloads.api.svidDirectory: must be a string"),
        ({"api_bots": "ci-runner"}, "workloads.api.bots: must be a valid list"),
        ({"api_bots": ["dev-ci", "dev-ci"]}, "workloads.api.bots: lists 'dev-ci' more than once"),
        (
            {"api_bots": ["ci/runner"]},
            "workloads.api.bots: 'ci/runner' is not a bot name: use 1-64 letters, digits, '.', '_' and '-', "
            "starting with a letter or digit",
        ),
        (
            {"api_users": ["alice smith"]},
            "workloads.api.users: 'alice smith' is not a Teleport user name: use 1-255 printable characters "
            "without whitespace, '/' or ','",
        ),
        ({"api_svidTtl": "48h"}, "workloads.api.svidTtl: must be between 1m and 24h, got '48h'"),
        ({"api_svidTtl": "1 day"}, "workloads.api.svidTtl: '1 day' is not a duration such as 30m, 1h or 8h"),
        (
            {"api_bots": ["dev-ci"], "teleport": {"bots": {"cl": {"joinMethod": "github"}}}},
            "teleport.bots.cl: no workload lists bot 'cl' in its bots",
        ),
        (
            {"api_bots": ["dev-ci-runner"], "teleport": {"bots": {"dev-ci-runnr": {}}}},
            "teleport.bots.dev-ci-runnr: no workload lists bot 'dev-ci-runnr' in its bots "
            "(did you mean 'dev-ci-runner'?)",
        ),
        (
            {"api_bots": ["dev-ci"], "teleport": {"bots": {"dev-ci": {"joinMethod": "magic"}}}},
            "teleport.bots.dev-ci.joinMethod: 'magic' is not a Teleport join method; use one of: token, "
            "azure, azure_devops, bitbucket, bound_keypair, circleci, ec2, env0, gcp, github, gitlab, iam, "
            "kubernetes, oracle, spacelift, terraform_cloud, tpm",
        ),
        (
            {"api_bots": ["dev-ci"], "teleport": {"bots": {"dev-ci": {"token": "f3b1c2d4e5"}}}},
            "teleport.bots.dev-ci.token: with joinMethod 'token' give the absolute path of a file holding "
            "the one-time join token, not the token itself (it is a secret and would be written into "
            "rendered files and stack outputs)",
        ),
        (
            {
                "api_bots": ["dev-ci"],
                "teleport": {"bots": {"dev-ci": {"joinMethod": "github", "token": "a b"}}},
            },
            "teleport.bots.dev-ci.token: 'a b' is not the name of a Teleport join token",
        ),
        (
            {"api_bots": ["dev-ci"], "teleport": {"bots": {"dev-ci": {"storagePath": "var/bot"}}}},
            "teleport.bots.dev-ci.storagePath: must be an absolute folder (starting with '/'), got 'var/bot'",
        ),
        (
            {"aws": {"credentials": "file"}},
            "aws.credentials: must be 'process', 'tbot' or 'serve'",
        ),
        (
            {"aws": {"credentials": "tbot"}, "teleport": {"mode": "legacy"}},
            "aws.credentials: 'tbot' needs teleport.mode 'workload-identity': tbot's "
            "workload-identity-aws-roles-anywhere service selects a WorkloadIdentity resource, which legacy "
            "mode does not create",
        ),
        (
            {"aws": {"signingHelper": "./aws_signing_helper"}},
            "aws.signingHelper: must be a program name on PATH or an absolute path, "
            "got './aws_signing_helper'",
        ),
        ({"aws": {"signinghelper": "x"}}, "aws.signinghelper: unknown key (did you mean 'signingHelper'?)"),
        ({"artifactsDir": ""}, "artifactsDir: must be a folder path"),
    ],
)
def test_each_mistake_is_one_line_naming_the_key(changes: dict[str, Any], error: str) -> None:
    assert error_of(**changes) == error
    assert "\n" not in error


def test_bot_names_differing_only_in_case_are_refused() -> None:
    values = copy.deepcopy(base_values())
    values["workloads"]["api"]["bots"] = ["dev-CI"]
    values["workloads"]["worker"]["bots"] = ["dev-ci"]
    with pytest.raises(ConfigError) as raised:
        load_spec(values, stack="dev", base_dir=Path(), now=NOW)
    assert str(raised.value) == (
        "teleport.bots: bots 'dev-CI' and 'dev-ci' differ only in case; their tbot/<bot>.yaml files would "
        "collide on case-insensitive file systems"
    )
