"""Teleport's published operator schemas, read in place from ``../shared`` and made strict.

The CRDs are Kubernetes structural schemas: they never forbid unknown keys (Kubernetes prunes them)
and they mark optional values ``nullable``. For our checks an unknown key is a bug (Teleport would
reject or ignore it), so every object that lists its properties gets ``additionalProperties: false``,
and ``nullable`` becomes JSON Schema's ``null`` type.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

SCHEMAS = Path(
    os.environ.get("TELEPORT_SCHEMAS_DIR")
    or Path(__file__).resolve().parent.parent.parent / "shared" / "schemas" / "teleport"
)
FILES = {
    ("role", "v7"): "resources.teleport.dev_rolesv7.yaml",
    ("role", "v8"): "resources.teleport.dev_rolesv8.yaml",
    ("workload_identity", "v1"): "resources.teleport.dev_workloadidentitiesv1.yaml",
    ("bot", "v1"): "resources.teleport.dev_botsv1.yaml",
}


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _strict(value) for key, value in node.items() if not key.startswith("x-kubernetes")}
    if node.get("x-kubernetes-int-or-string"):
        result["type"] = ["integer", "string"]
    if result.pop("nullable", False) and isinstance(result.get("type"), str):
        result["type"] = [result["type"], "null"]
    if "properties" in result and "additionalProperties" not in result:
        result["additionalProperties"] = False
    if result.get("format") == "duration":
        del result["format"]
    return result


@cache
def spec_validator(kind: str, version: str) -> jsonschema.Draft7Validator:
    """A validator for the ``spec`` of a Teleport resource of ``kind``/``version``."""
    path = SCHEMAS / FILES[(kind, version)]
    if not path.is_file():
        reason = (
            f"Teleport's schema {path} is missing: the tests read ../shared/schemas/teleport next to this "
            "checkout (or set TELEPORT_SCHEMAS_DIR)"
        )
        if os.environ.get("CI", "").lower() == "true":
            raise FileNotFoundError(reason)  # CI has the schemas: their absence is a failure there
        pytest.skip(reason)
    crd = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    strict = _strict(spec_schema)
    jsonschema.Draft7Validator.check_schema(strict)
    return jsonschema.Draft7Validator(strict)


def spec_errors(resource: dict[str, Any]) -> list[str]:
    """Every schema violation of ``resource['spec']``, as ``path: message`` lines."""
    validator = spec_validator(resource["kind"], resource["version"])
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or 'spec'}: {error.message}"
        for error in validator.iter_errors(resource["spec"])
    ]
