"""The component as a package for every Pulumi language: the schema the component-provider host
generates from ``Federation``'s annotations and docstrings (offline; `pulumi package add` is not run)."""

from __future__ import annotations

import json
import runpy
from typing import Any

import pytest
from pulumi.provider.experimental.component import ComponentProvider
from pydantic import BaseModel
from pydantic.alias_generators import to_camel

from roles_anywhere.components import federation_args as fa
from roles_anywhere.components import provider
from roles_anywhere.config import model

from .conftest import ROOT

TOKEN = "teleport-roles-anywhere:index:Federation"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    generated: dict[str, Any] = json.loads(ComponentProvider(provider.COMPONENTS, provider.PACKAGE).schema)
    return generated


def test_the_component_lists_its_inputs_and_outputs_with_types(schema: dict[str, Any]) -> None:
    federation = schema["resources"][TOKEN]
    assert federation["isComponent"] is True
    inputs = federation["inputProperties"]
    assert sorted(federation["requiredInputs"]) == ["cluster", "workloads"]
    assert inputs["cluster"]["type"] == "string"
    assert inputs["caBundle"] == {
        "description": "The cluster's SPIFFE CA bundle as PEM: text, or another resource's output.",
        "type": "string",
    }  # not plain: another resource's output may feed it
    assert (
        inputs["workloads"]["additionalProperties"]["$ref"]
        == "#/types/teleport-roles-anywhere:index:WorkloadSettingsArgs"
    )
    for name in ("caBundleSource", "trustAnchor", "teleport", "aws", "iam", "profile", "quotas", "imports"):
        assert inputs[name]["$ref"].startswith("#/types/teleport-roles-anywhere:index:"), name
    outputs = federation["properties"]
    assert outputs["trustAnchorArn"]["type"] == "string"
    for name in ("roleArns", "profileArns"):
        assert outputs[name]["type"] == "object"
        assert outputs[name]["additionalProperties"]["type"] == "string"
    assert outputs["stackOutputs"]["type"] == "object"
    workload = schema["types"]["teleport-roles-anywhere:index:WorkloadSettingsArgs"]
    assert workload["required"] == ["spiffeId"]
    assert workload["properties"]["sessionDuration"]["type"] == "integer"
    assert workload["properties"]["bots"]["items"]["type"] == "string"


def test_every_input_output_and_type_property_is_documented(schema: dict[str, Any]) -> None:
    federation = schema["resources"][TOKEN]
    assert federation["description"].startswith("IAM Roles Anywhere for a Teleport cluster's workloads.")
    documented = [
        *(("input", k, v) for k, v in federation["inputProperties"].items()),
        *(("output", k, v) for k, v in federation["properties"].items()),
        *((token, k, v) for token, t in schema["types"].items() for k, v in t["properties"].items()),
    ]
    assert len(documented) > 60
    missing = [(where, key) for where, key, prop in documented if not prop.get("description", "").strip()]
    assert missing == []
    assert all(t.get("description") for t in schema["types"].values())


# The typed arguments against the stack config's models: a key added to one and not the other fails here.
PAIRS: list[tuple[type, type[BaseModel]]] = [
    (fa.FederationArgs, model.StackConfig),
    (fa.WorkloadSettingsArgs, model.WorkloadConfig),
    (fa.ProfileSettingsArgs, model.ProfileSettingsConfig),
    (fa.IamSettingsArgs, model.IamSettingsConfig),
    (fa.TrustAnchorOptionsArgs, model.TrustAnchorConfig),
    (fa.TeleportOptionsArgs, model.TeleportConfig),
    (fa.BotOptionsArgs, model.BotConfig),
    (fa.AwsClientOptionsArgs, model.AwsClientConfig),
    (fa.QuotaArgs, model.QuotasConfig),
    (fa.ImportArgs, model.ImportConfig),
    (fa.CaBundleSourceArgs, model.CaBundleConfig),
]


@pytest.mark.parametrize(("typed", "config"), PAIRS, ids=[t.__name__ for t, _ in PAIRS])
def test_typed_arguments_and_stack_config_have_the_same_keys(typed: type, config: type[BaseModel]) -> None:
    typed_keys = {key for key in typed.__annotations__ if key != "ca_bundle"}
    config_keys = {field.alias or to_camel(name) for name, field in config.model_fields.items()}
    assert {_config_name(key) for key in typed_keys} == config_keys


def _config_name(key: str) -> str:
    return {"ca_bundle_source": "caBundle", "imports": "import"}.get(key) or to_camel(key)


def test_the_plugin_entry_point_serves_exactly_these_components(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[tuple[Any, ...]] = []
    monkeypatch.setattr(provider, "component_provider_host", lambda *a, **k: served.append((a, k)))
    runpy.run_path(str(ROOT / "provider" / "__main__.py"), run_name="__main__")
    assert served == [
        ((provider.COMPONENTS,), {"name": "teleport-roles-anywhere", "version": provider.package_version()})
    ]
    assert (ROOT / "provider" / "PulumiPlugin.yaml").read_text().splitlines()[-1] == "runtime: python"
