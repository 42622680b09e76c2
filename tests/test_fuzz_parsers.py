"""Hypothesis against every parser of outside input: a result or one of the project's errors, never another.

Mutations start from valid inputs (a CA's PEM and DER, a served SPIFFE bundle, stack outputs, a stack
file) so the fuzzing reaches deep into each parser instead of stopping at the first byte.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roles_anywhere import PROJECT
from roles_anywhere.bundle.ca_bundle import parse_bundle_bytes, parse_served_bundle
from roles_anywhere.config import strict_yaml
from roles_anywhere.config.stack_file import read_stack_file
from roles_anywhere.credentials.credential_process import load_certificate_file, load_private_key
from roles_anywhere.errors import ConfigError, RolesAnywhereError
from roles_anywhere.plan.run import plan_stack_file
from roles_anywhere.stack.deployment import load_deployment
from roles_anywhere.stack.spec import load_spec

from .bundle_server import bundle_json
from .certs import NOW, make_svid
from .conftest import CA, base_values

CA_DER = CA.certificate.public_bytes(serialization.Encoding.DER)
SVID = make_svid(CA, "spiffe://example.teleport.sh/svc/api")
TMP_OK = settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with a few bytes flipped, cut, repeated or inserted."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        operation = draw(st.sampled_from(["flip", "cut", "insert", "truncate", "repeat"]))
        if operation == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif operation == "cut":
            del data[at : at + draw(st.integers(1, 16))]
        elif operation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "truncate":
            del data[at:]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


def _bundle_outcome(parse: Any, data: bytes) -> None:
    try:
        parse(data, key="caBundle.file", source="x: ", now=NOW)
    except RolesAnywhereError as err:
        assert "\n" not in str(err)  # noqa: PT017 - the message itself is the behaviour under test


@given(mutated(CA.pem.encode()))
def test_a_mutated_pem_bundle_is_a_bundle_or_one_error(data: bytes) -> None:
    _bundle_outcome(parse_bundle_bytes, data)


@given(mutated(CA_DER))
def test_mutated_der_is_a_bundle_or_one_error(data: bytes) -> None:
    _bundle_outcome(parse_bundle_bytes, data)


@given(mutated(bundle_json(CA).encode()))
def test_a_mutated_served_bundle_is_a_bundle_or_one_error(data: bytes) -> None:
    _bundle_outcome(parse_served_bundle, data)


@given(mutated(CA_DER))
def test_a_served_bundle_with_a_mutated_certificate_is_a_bundle_or_one_error(der: bytes) -> None:
    document = json.loads(bundle_json(CA))
    document["keys"][0]["x5c"] = [base64.b64encode(der).decode()]
    _bundle_outcome(parse_served_bundle, json.dumps(document).encode())


@TMP_OK
@given(mutated(SVID.pem.encode()), mutated(SVID.key_pem.encode()))
def test_mutated_svid_files_are_read_or_refused_in_one_line(tmp_path: Path, pem: bytes, key: bytes) -> None:
    (tmp_path / "svid.pem").write_bytes(pem)
    (tmp_path / "svid.key").write_bytes(key)
    for read in (
        lambda: load_certificate_file(tmp_path / "svid.pem", "--certificate"),
        lambda: load_private_key(tmp_path / "svid.key"),
    ):
        try:
            read()
        except ConfigError as err:
            assert "\n" not in str(err)  # noqa: PT017


def _valid_stack_text() -> bytes:
    values = base_values()
    values["caBundle"] = {"pem": CA.pem}
    config = {f"{PROJECT}:{key}": value for key, value in values.items()}
    return yaml.safe_dump({"config": {"aws:region": "us-east-1", **config}}).encode()


@TMP_OK
@given(mutated(_valid_stack_text()))
def test_a_mutated_stack_file_is_a_spec_or_one_config_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_bytes(data)
    try:
        stack_file = read_stack_file(path)
        load_spec(stack_file.project_values(), base_dir=tmp_path, stack=stack_file.stack, now=NOW)
    except ConfigError as err:
        assert "\n" not in str(err)  # noqa: PT017


YAMLISH = st.text(alphabet="ab1:&*!<[]{}-,\n #'\"?|>%@`\t.~=", max_size=120)


@given(YAMLISH)
def test_yaml_made_of_syntax_is_data_or_a_yaml_error(text: str) -> None:
    with contextlib.suppress(yaml.YAMLError, strict_yaml.StrictYamlError):
        strict_yaml.load(text)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


@functools.cache
def _outputs() -> dict[str, Any]:
    """The stack outputs `plan` predicts for the valid stack file above."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "Pulumi.dev.yaml"
        path.write_bytes(_valid_stack_text())
        outputs: dict[str, Any] = json.loads(json.dumps(plan_stack_file(path).to_json()["outputs"]))
    return outputs


OUTPUT_KEYS = ["cluster", "trustAnchorArn", "trustAnchor", "caCertificates", "teleport", "aws", "workloads"]


@given(st.dictionaries(st.sampled_from(OUTPUT_KEYS), JSON_VALUES, max_size=4))
def test_changed_stack_outputs_are_a_deployment_or_one_config_error(changes: dict[str, Any]) -> None:
    try:
        load_deployment({**_outputs(), **changes}, source="outputs.json")
    except ConfigError as err:
        assert "\n" not in str(err)  # noqa: PT017
