"""``aws.credentials: serve``: a systemd unit running ``roles-anywhere serve`` and the applications'
environment per workload, an ``aws/config`` that falls through to IMDS (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roles_anywhere.cli import main
from roles_anywhere.errors import ConfigError
from roles_anywhere.render.quoting import RenderError, systemd_words
from roles_anywhere.stack.serve_ports import assign_serve_ports, derived_port

from .conftest import stack_config, write_stack


def render(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], orders_port: int | None = None, **aws: object
) -> Path:
    orders: dict[str, object] = {"spiffeId": "/svc/orders", "svidDirectory": "/opt/svid/100%$HOME"}
    workloads = {
        "orders": {**orders, "bots": ["dev-ci"], **({"servePort": orders_port} if orders_port else {})},
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
    out = render(tmp_path, capsys, orders_port=9920)
    unit = (out / "serve" / "orders.service").read_text()
    (exec_line,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert exec_line.startswith('ExecStart="roles-anywhere" "serve" "--port" "9920" "--certificate" ')
    assert '"/opt/svid/100%%$$HOME/svid.pem"' in exec_line  # systemd would expand % and $ otherwise
    env = (out / "serve" / "orders.env").read_text()
    assert "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:9920/\n" in env
    config = (out / "aws" / "config").read_text()
    assert "credential_process" not in config
    assert "export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:9920/" in config
    billing = derived_port(9911, "billing")
    assert f'"serve" "--port" "{billing}" ' in (out / "serve" / "billing.service").read_text()
    assert (
        f"AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:{billing}/\n"
        in (out / "serve" / "billing.env").read_text()
    )
    assert f"export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:{billing}/" in config


def test_two_workloads_never_share_a_port_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both on 9911 was the bug: an application pointed at one service got the other workload's role."""
    out = render(tmp_path, capsys)
    ports = {
        name: (out / "serve" / f"{name}.env").read_text().split("http://127.0.0.1:", 1)[1].split("/")[0]
        for name in ("orders", "billing")
    }
    assert ports == {
        "orders": str(derived_port(9911, "orders")),
        "billing": str(derived_port(9911, "billing")),
    }
    assert ports["orders"] != ports["billing"]


def test_serve_is_in_the_stack_outputs_and_renders_the_same_from_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = render(tmp_path, capsys, orders_port=9920)
    stack = tmp_path / "Pulumi.dev.yaml"
    assert main(["plan", "--json", "--config", str(stack)]) == 0
    outputs = json.loads(capsys.readouterr().out)["outputs"]
    assert outputs["aws"]["credentials"] == "serve"
    assert outputs["aws"]["servePort"] == 9911
    assert outputs["aws"]["serveHelper"] == "python"
    assert outputs["workloads"]["orders"]["servePort"] == 9920
    assert outputs["workloads"]["billing"]["servePort"] == derived_port(9911, "billing")
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    again = tmp_path / "again"
    assert main(["render", "--stack-outputs", str(tmp_path / "outputs.json"), "--out", str(again)]) == 0
    for name in ("serve/orders.service", "serve/orders.env", "serve/billing.env", "aws/config"):
        assert (again / name).read_text() == (out / name).read_text(), name
    # outputs written before each workload had its own port: derived as the plan derives them
    for workload in outputs["workloads"].values():
        del workload["servePort"]
    (tmp_path / "old.json").write_text(json.dumps(outputs))
    old = tmp_path / "old"
    assert main(["render", "--stack-outputs", str(tmp_path / "old.json"), "--out", str(old)]) == 0
    assert f"127.0.0.1:{derived_port(9911, 'orders')}/" in (old / "serve" / "orders.env").read_text()
    assert (old / "serve" / "billing.env").read_text() == (out / "serve" / "billing.env").read_text()
    # an outputs file that gives two workloads one port is refused
    outputs["workloads"]["orders"]["servePort"] = outputs["workloads"]["billing"]["servePort"] = 9930
    (tmp_path / "hostile.json").write_text(json.dumps(outputs))
    assert (
        main(["render", "--stack-outputs", str(tmp_path / "hostile.json"), "--out", str(tmp_path / "h")]) == 2
    )
    assert capsys.readouterr().err.startswith(
        f"error: {tmp_path / 'hostile.json'}: workloads.orders.servePort: 9930 is also "
        "workloads.billing's serve port; each workload's serve needs its own"
    )


def test_a_port_is_derived_from_its_name_alone() -> None:
    """Adding or removing other workloads never moves a workload's port."""
    names = [f"service-{index}" for index in range(20)]
    together = assign_serve_ports(9911, names, {})
    assert together == {name: assign_serve_ports(9911, [name], {})[name] for name in names}
    assert len(set(together.values())) == len(names)
    assert all(9911 <= port < 19911 for port in together.values())


def colliding_names(base: int) -> tuple[str, str]:
    seen: dict[int, str] = {}
    for index in range(100_000):
        name = f"w{index}"
        port = derived_port(base, name)
        if port in seen:
            return seen[port], name
        seen[port] = name
    raise AssertionError("no collision found")


def test_a_new_workload_that_lands_on_a_taken_port_is_refused_never_moves_the_other() -> None:
    """The review's case: a new name hashing onto an existing workload's port used to take it."""
    first, second = colliding_names(9911)
    port = derived_port(9911, first)
    with pytest.raises(ConfigError) as refused:
        assign_serve_ports(9911, [first, second], {})
    later = max(first, second)
    assert str(refused.value).startswith(
        f"workloads.{later}.servePort: {port} is also workloads.{min(first, second)}'s serve port; each "
        f"workload's serve needs its own: pin the one that is new, e.g. workloads.{later}.servePort: "
    )
    free = int(str(refused.value).rsplit(" ", 1)[1])
    pinned = assign_serve_ports(9911, [first, second], {later: free})
    assert pinned == {min(first, second): port, later: free}
    # a pinned workload keeps its port; a derived one landing on it is the one named
    with pytest.raises(
        ConfigError, match=rf"workloads\.{second}\.servePort: {derived_port(9911, second)} is also "
    ):
        assign_serve_ports(9911, [first, second], {first: derived_port(9911, second)})
    with pytest.raises(ConfigError, match=r"workloads.b.servePort: 9920 is also workloads.a's serve port"):
        assign_serve_ports(9911, ["a", "b"], {"a": 9920, "b": 9920})


def test_two_workloads_pinned_to_one_port_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workloads = {
        "orders": {"spiffeId": "/svc/orders", "servePort": 9950},
        "billing": {"spiffeId": "/svc/billing", "servePort": 9950},
    }
    stack = write_stack(tmp_path, stack_config(aws={"credentials": "serve"}, workloads=workloads))
    assert main(["plan", "--config", str(stack)]) == 2
    assert capsys.readouterr().err == (
        "error: workloads.orders.servePort: 9950 is also workloads.billing's serve port; each workload's "
        "serve needs its own: pin the one that is new, e.g. workloads.orders.servePort: 9951\n"
    )


def test_serve_helper_runs_the_go_helpers_serve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = render(tmp_path, capsys, serveHelper="/usr/local/bin/aws_signing_helper", orders_port=9920)
    unit = (out / "serve" / "orders.service").read_text()
    (exec_line,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert exec_line.startswith('ExecStart="/usr/local/bin/aws_signing_helper" "serve" "--port" "9920" ')
    assert "`/usr/local/bin/aws_signing_helper` `serve`" in (out / "README.md").read_text()


def test_serve_helper_is_checked_like_signing_helper(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for aws, message in (
        (
            {"serveHelper": "./aws_signing_helper"},
            "aws.serveHelper: must be a program name on PATH or an absolute path",
        ),
        (
            {"serveHelper": "aws_signing_helper", "signingHelper": "python", "endpointCaFile": "/ca.pem"},
            "aws: 'endpointCaFile' needs serveHelper: python",
        ),
    ):
        stack = write_stack(tmp_path, stack_config(aws={"credentials": "serve", **aws}))
        assert main(["plan", "--config", str(stack)]) == 2
        assert capsys.readouterr().err.startswith(f"error: {message}")


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
