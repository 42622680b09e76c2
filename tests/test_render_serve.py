"""``aws.credentials: serve``: a systemd unit running ``roles-anywhere serve`` and the applications'
environment per workload, an ``aws/config`` that falls through to IMDS (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roles_anywhere.cli import main
from roles_anywhere.render.quoting import RenderError, systemd_words

from .conftest import stack_config, write_stack


def render(tmp_path: Path, capsys: pytest.CaptureFixture[str], **aws: object) -> Path:
    workloads = {
        "orders": {"spiffeId": "/svc/orders", "svidDirectory": "/opt/svid/100%$HOME", "bots": ["dev-ci"]},
        "billing": {"spiffeId": "/svc/billing", "svidDirectory": "/opt/svid/billing", "bots": ["dev-ci"]},
    }
    stack = write_stack(tmp_path, stack_config(aws={"credentials": "serve", **aws}, workloads=workloads))
    out = tmp_path / "out"
    assert main(["render", "--config", str(stack), "--out", str(out)]) == 0
    capsys.readouterr()
    return out


def test_each_workload_gets_a_unit_and_an_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = render(tmp_path, capsys, servePort=9920)
    unit = (out / "serve" / "orders.service").read_text()
    (exec_line,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert exec_line.startswith('ExecStart="roles-anywhere" "serve" "--port" "9920" "--certificate" ')
    assert '"/opt/svid/100%%$$HOME/svid.pem"' in exec_line  # systemd would expand % and $ otherwise
    env = (out / "serve" / "orders.env").read_text()
    assert "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:9920/\n" in env
    config = (out / "aws" / "config").read_text()
    assert "credential_process" not in config
    assert "export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:9920/" in config
    assert (out / "serve" / "billing.service").exists()


def test_serve_is_in_the_stack_outputs_and_renders_the_same_from_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = render(tmp_path, capsys)
    stack = tmp_path / "Pulumi.dev.yaml"
    assert main(["plan", "--json", "--config", str(stack)]) == 0
    outputs = json.loads(capsys.readouterr().out)["outputs"]
    assert outputs["aws"]["credentials"] == "serve"
    assert outputs["aws"]["servePort"] == 9911
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    again = tmp_path / "again"
    assert main(["render", "--stack-outputs", str(tmp_path / "outputs.json"), "--out", str(again)]) == 0
    for name in ("serve/orders.service", "serve/orders.env", "aws/config"):
        assert (again / name).read_text() == (out / name).read_text(), name


def test_other_modes_have_no_serve_files_or_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = write_stack(tmp_path, stack_config())
    assert main(["plan", "--json", "--config", str(stack)]) == 0
    assert "servePort" not in json.loads(capsys.readouterr().out)["outputs"]["aws"]


@pytest.mark.parametrize("port", [80, 70_000])
def test_a_port_out_of_range_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], port: int
) -> None:
    stack = write_stack(tmp_path, stack_config(aws={"credentials": "serve", "servePort": port}))
    assert main(["plan", "--config", str(stack)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: aws.servePort: must be a port between 1024 and 65535")


def test_systemd_words_refuse_what_a_unit_cannot_carry() -> None:
    assert systemd_words(["a b", 'q"', "back\\slash"]) == '"a b" "q\\"" "back\\\\slash"'
    with pytest.raises(RenderError):
        systemd_words(["line\nbreak"])
