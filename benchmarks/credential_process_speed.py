"""What a cached `roles-anywhere credential-process` costs, as the AWS CLI runs it, against `python -c pass`.

The AWS CLI starts `credential_process` anew for every command and caches nothing, so this start-up is
paid on every AWS call. Measured here: whole processes, started as the rendered `aws/config` starts
them (the `roles-anywhere` launcher in the venv's bin folder, the rendered flags), answered from a
fresh cache entry, against the same interpreter running `python -c pass`:
  baseline      `python -c pass`
  cached        `roles-anywhere credential-process --certificate … --private-key … --trust-anchor-arn …
                --profile-arn … --role-arn …` (the line render emits by default)
  cached + CA   the same with `--ca-bundle FILE` (rendered when aws.endpointCaFile is set: the cache
                key holds the bundle's digest, so the fast path reads it)
The rounds are interleaved (the order alternates in each round), so a machine that slows down or speeds
up mid-run moves all of them alike. Each process is started by a small meter process (`python -I -S`)
that forks, execs it and reaps it with `os.wait4`: CPU (user + system) and peak RSS are the measured
process's own (a child spawned straight from this larger process would inherit this one's peak RSS
at exec), and wall time runs from fork to exit. Each answer is checked (exit 0, the cached key id).

  --wheel     measure a wheel built from this checkout, installed with `pip install --no-deps` into a
              new venv (the fast path needs only the standard library; a miss fails loudly there), as a
              user's install has it, instead of this venv's editable install (whose import hook loads
              pathlib and re into every process, `python -c pass` included)
  --bin DIR   measure the `roles-anywhere` and `python` in DIR

Usage: python benchmarks/credential_process_speed.py [ROUNDS] [--wheel | --bin DIR]   (default: 40)
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.certs import make_ca, make_svid  # noqa: E402

ANCHOR = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/0f0e0d0c-1111-2222-3333-444455556666"
PROFILE = "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/1f0e0d0c-1111-2222-3333-444455556666"
ROLE = "arn:aws:iam::111122223333:role/orders"
KEY_ID = "ASIABENCHMARKBENCH01"

# Runs under `python -I -S` (nothing but the interpreter): fork, exec argv, wait4; one line on stderr.
METER = """
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
cpu = usage.ru_utime + usage.ru_stime
sys.stderr.write(f"{wall} {cpu} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}\\n")
"""


def measure(python: str, argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of one run of ``argv``; its answer is checked."""
    done = subprocess.run(
        [python, "-I", "-S", "-c", METER, *argv], capture_output=True, text=True, env=env, check=False
    )
    *said, meter = done.stderr.splitlines() or [""]
    wall, cpu, rss, code = meter.split()
    if int(code) != 0 or said or (argv[1:2] == ["credential-process"] and KEY_ID not in done.stdout):
        raise SystemExit(f"{argv[0]} {argv[1:2]} failed (exit {code}): {done.stdout!r} {done.stderr!r}")
    return float(wall), float(cpu), int(rss) / 1024


def install_wheel(scratch: Path) -> Path:
    """A new venv holding only a wheel of this checkout (no dependencies): its bin folder."""
    dist, venv = scratch / "dist", scratch / "venv"
    for command in (
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(ROOT), "-w", str(dist)],
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(dist / "*.whl")],
    ):
        if "*.whl" in command[-1]:
            (wheel,) = dist.glob("*.whl")
            command[-1] = str(wheel)
        subprocess.run(command, check=True, capture_output=True)
    return venv / "bin"


def fill_cache(flags: list[str], folder: Path, env: dict[str, str]) -> None:
    """A fresh entry for these flags, as a CreateSession answer would have left it.

    The key is computed under the measured processes' environment (it holds SSL_CERT_FILE's value).
    """
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        _store_entry(flags, folder)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _store_entry(flags: list[str], folder: Path) -> None:
    from roles_anywhere.credentials import cache  # noqa: PLC0415
    from roles_anywhere.entry import parsed_flags  # noqa: PLC0415

    values = parsed_flags(flags)
    assert values is not None  # noqa: S101
    key = cache.cache_key(**{name: values[name] for name in cache.KEY_ARGUMENTS})
    assert key is not None  # noqa: S101
    expiration = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    answer = {"accessKeyId": KEY_ID, "secretAccessKey": "s", "sessionToken": "t", "expiration": expiration}
    cache.store(key, answer, datetime.now(UTC) + timedelta(hours=2), str(folder))


def summary(samples: list[tuple[float, float, float]]) -> dict[str, float]:
    walls, cpus, rss = zip(*samples, strict=True)
    return {
        "cpu_min": min(cpus),
        "cpu": statistics.median(cpus),
        "wall_min": min(walls),
        "wall": statistics.median(walls),
        "rss": statistics.median(rss),
    }


def main(rounds: int, bin_dir: Path | None, wheel: bool) -> None:
    machine = f"{platform.machine()}, {platform.system()}, {os.cpu_count()} cores"
    print(f"python {platform.python_version()} on {machine}")
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        if wheel:
            bin_dir = install_wheel(scratch)
        bin_dir = bin_dir or Path(sys.executable).parent
        python, helper = str(bin_dir / "python"), str(bin_dir / "roles-anywhere")
        now = datetime.now(UTC)
        ca = make_ca("bench.teleport.sh")
        svid = make_svid(
            ca, "spiffe://bench.teleport.sh/svc/orders", not_before=now, not_after=now + timedelta(hours=2)
        )
        (scratch / "svid.pem").write_text(svid.pem)
        (scratch / "svid_key.pem").write_text(svid.key_pem)
        (scratch / "endpoint-ca.pem").write_text(ca.pem)
        env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "HOME": str(scratch)}
        env["ROLES_ANYWHERE_CACHE_DIR"] = str(scratch / "cache")
        flags = [
            "--certificate", str(scratch / "svid.pem"),
            "--private-key", str(scratch / "svid_key.pem"),
            "--trust-anchor-arn", ANCHOR,
            "--profile-arn", PROFILE,
            "--role-arn", ROLE,
        ]  # fmt: skip
        with_ca = [*flags, "--ca-bundle", str(scratch / "endpoint-ca.pem")]
        for each in (flags, with_ca):
            fill_cache(each, scratch / "cache", env)
        commands = {
            "python -c pass (baseline)": [python, "-c", "pass"],
            "cached credential-process": [helper, "credential-process", *flags],
            "cached, with --ca-bundle": [helper, "credential-process", *with_ca],
        }
        samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
        for argv in commands.values():  # warm the page cache
            measure(python, argv, env)
        for round_number in range(rounds):
            order = list(commands.items())
            for name, argv in order if round_number % 2 else reversed(order):
                samples[name].append(measure(python, argv, env))
        print(f"measured: {helper} ({'a wheel, --no-deps' if wheel else 'as installed'})")
        print(f"{rounds} interleaved rounds; CPU = user + system of the process (os.wait4); ms\n")
        print(
            f"{'':27} {'CPU min':>7} {'median':>7} {'wall min':>8} {'median':>7} {'peak RSS':>8}"
            "   ratio to baseline: CPU median, wall median, wall min"
        )
        base = summary(samples["python -c pass (baseline)"])
        for name, figures in samples.items():
            got = summary(figures)
            ms = {figure: value * 1000 for figure, value in got.items()}
            print(
                f"{name:27} {ms['cpu_min']:7.1f} {ms['cpu']:7.1f} {ms['wall_min']:8.1f} {ms['wall']:7.1f} "
                f"{got['rss']:6.1f}MB   {got['cpu'] / base['cpu']:.2f}, {got['wall'] / base['wall']:.2f}, "
                f"{got['wall_min'] / base['wall_min']:.2f}"
            )


if __name__ == "__main__":
    import argparse

    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    cli.add_argument("rounds", nargs="?", type=int, default=40)
    where = cli.add_mutually_exclusive_group()
    where.add_argument("--wheel", action="store_true", help="a wheel of this checkout in a new venv, no deps")
    where.add_argument("--bin", type=Path, help="the roles-anywhere and python in this folder")
    options = cli.parse_args()
    main(options.rounds, options.bin, options.wheel)
