"""Run the Pulumi program offline, under the SDK's unit-test mocks: what ``pulumi up`` would create.

No Pulumi CLI, no provider plugin, no cloud account. The program is the project's own ``__main__.py``
run exactly as the Pulumi language host runs it, with the stack file's config; the mocks return
realistic, deterministic ARNs (see ``mocks``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource as rlimits
import runpy
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from roles_anywhere import CONFIG_DIR_ENV, OFFLINE_PLAN_ENV, PROJECT, TRUST_ANCHOR_TYPE, WORKLOAD_TYPE
from roles_anywhere.components.previous_outputs import PREVIOUS_OUTPUTS_ENV, READ_STACK_OUTPUTS
from roles_anywhere.components.resolved_outputs import resolved_values
from roles_anywhere.components.run_errors import original_error
from roles_anywhere.config.stack_file import read_stack_file
from roles_anywhere.errors import ConfigError
from roles_anywhere.plan.mocks import (
    PROFILE,
    ROLE,
    ROLE_POLICY,
    ROLE_POLICY_ATTACHMENT,
    TRUST_ANCHOR,
    DeterministicAwsMocks,
)
from roles_anywhere.stack.deployment import load_deployment, read_outputs_file
from roles_anywhere.stack.profiles import previous_profiles
from roles_anywhere.stack.spec import load_spec
from roles_anywhere.teleport.access import TeleportAccess, access_json, teleport_access

PLACEHOLDER_ACCOUNT_ID = "123456789012"
_STACK_TYPE = "pulumi:pulumi:Stack"
_ORDER = {
    TRUST_ANCHOR_TYPE: 0,
    WORKLOAD_TYPE: 1,
    TRUST_ANCHOR: 0,
    ROLE: 1,
    ROLE_POLICY_ATTACHMENT: 2,
    ROLE_POLICY: 3,
    PROFILE: 4,
}


@dataclass(frozen=True)
class PlannedResource:
    """One resource the program registered, with its engine-side inputs and mocked outputs."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    protect: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    import_id: str = ""  # the existing resource `pulumi up` adopts instead of creating one

    def to_json(self) -> dict[str, Any]:
        """The plan JSON contract: type, name, inputs, outputs (plus parent and protect)."""
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "protect": self.protect,
            **({"import": self.import_id} if self.import_id else {}),
            "inputs": self.inputs,
            "outputs": self.outputs,
        }


@dataclass(frozen=True)
class Plan:
    """Everything ``pulumi up`` would create, in a stable order, and the stack outputs."""

    stack: str
    region: str
    account_id: str
    resources: tuple[PlannedResource, ...]
    components: tuple[PlannedResource, ...]
    outputs: dict[str, Any]
    warnings: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """``{"resources": [...], "outputs": {...}}`` as documented in DESIGN.md."""
        return {
            "stack": self.stack,
            "region": self.region,
            "accountId": self.account_id,
            "resources": [r.to_json() for r in self.resources],
            "components": [c.to_json() for c in self.components],
            "outputs": self.outputs,
            "access": access_json(self.access, legacy=self.legacy),
        }

    @cached_property
    def access(self) -> TeleportAccess:
        """Who can obtain which SVID and AWS role, from the planned stack outputs."""
        return teleport_access(load_deployment(self.outputs, source=f"plan of stack {self.stack}"))

    @property
    def legacy(self) -> bool:
        """Whether Teleport issues through legacy role rules instead of WorkloadIdentity resources."""
        return bool(self.outputs.get("teleport", {}).get("mode") == "legacy")

    def children(self, parent: str | None) -> list[PlannedResource]:
        """Resources and components directly under ``parent`` (a URN), in display order."""
        return self._children_by_parent.get(parent, [])

    @cached_property
    def _children_by_parent(self) -> dict[str | None, list[PlannedResource]]:
        index: dict[str | None, list[PlannedResource]] = {}
        for resource in _tree_order([*self.components, *self.resources]):
            index.setdefault(resource.parent, []).append(resource)
        return index


class PreviousOutputsMocks(pulumi.runtime.Mocks):
    """``mocks``, also answering the program's read of its stack's previous outputs (issue 22).

    The engine answers ``pulumi:pulumi:readStackOutputs`` (``components.previous_outputs``) from the
    backend; offline, the answer is the ``--stack-outputs`` file (``outputs``, named ``source``), or
    none: a stack never deployed. So ``plan --stack-outputs`` runs the program's own read, not a
    shortcut around it. ``asked`` keeps the stack names the program asked for.
    """

    def __init__(
        self, mocks: DeterministicAwsMocks, outputs: Mapping[str, Any] | None = None, source: str = ""
    ) -> None:
        self.mocks = mocks
        self.outputs = dict(outputs or {})
        self.source = source
        self.asked: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        """As ``mocks`` answers."""
        return self.mocks.new_resource(args)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        """The previous outputs for their read; anything else as ``mocks`` answers.

        No failures is ``[]``: the SDK's mock monitor iterates the second item (``None`` fails there).
        """
        if args.token != READ_STACK_OUTPUTS:
            answer, failures = self.mocks.call(args)
            return answer, failures or []
        name = str(args.args.get("name", ""))
        self.asked.append(name)
        return {"name": self.source or name, "outputs": self.outputs, "secretOutputNames": []}, []


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, also remembering parent and protect, which mocks are not told.

    It also remembers the event loops the SDK creates in its worker threads, so the run can close
    them; left open, each one prints an "Exception ignored" traceback when the interpreter exits.
    """

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[tuple[str, Any]] = []
        self.thread_loops: set[asyncio.AbstractEventLoop] = set()

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        self.registrations.append((response.urn, request))
        self._remember_loop()
        return response

    def Invoke(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().Invoke(request)  # type: ignore[no-untyped-call]
        self._remember_loop()
        return response

    def _remember_loop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.thread_loops.add(asyncio.get_event_loop())

    def close_thread_loops(self) -> None:
        # A program that fails while RPCs are still in flight leaves workers that add loops to the set
        # and start them again between the check and the close: iterate over a copy, leave those loops
        # to their threads, and let the clean-up go on (an exception here would hide the program's).
        for loop in list(self.thread_loops):
            with contextlib.suppress(RuntimeError):
                if not loop.is_running() and not loop.is_closed():
                    loop.close()


class _WarningCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


# Measured under `ulimit -v` 300 MB with the cyclic collector off (as the CLI runs plan): 340 workloads
# fit, 450 crash; the address space is ~130 MB over the resident set (thread stacks, arenas), which
# grows ~0.2 MB per workload over ~90 MB for the interpreter, the Pulumi SDK and gRPC.
BASE_ADDRESS_SPACE = 220 * 1024 * 1024
ADDRESS_SPACE_PER_WORKLOAD = 220 * 1024


def check_memory_for(workloads: int, where: str) -> None:
    """Refuse a plan that would not fit the process's address-space limit (``ulimit -v``).

    Past the limit, allocation fails deep in gRPC's C code, which crashes the process (SIGSEGV)
    instead of raising; a clear line beforehand is the only way to fail well.
    """
    limit, _ = rlimits.getrlimit(rlimits.RLIMIT_AS)
    needed = BASE_ADDRESS_SPACE + workloads * ADDRESS_SPACE_PER_WORKLOAD
    if limit != rlimits.RLIM_INFINITY and needed > limit:
        raise ConfigError(
            where,
            f"planning {workloads} workloads needs about {needed // 2**20} MB of address space; this "
            f"process may use {limit // 2**20} MB (ulimit -v): raise the limit or split the stack",
        )


def plan_stack_file(
    path: Path, *, previous_outputs: Mapping[str, Any] | None = None, previous_source: str = ""
) -> Plan:
    """Validate ``Pulumi.<stack>.yaml`` and run the program against it under the mocks.

    ``previous_outputs``: the deployed stack's outputs (``plan --stack-outputs``, read from
    ``previous_source``), which the program reads back as under ``pulumi up`` to keep every workload
    in its shared profile.
    """
    stack_file = read_stack_file(path)
    region = stack_file.aws_region()
    spec = load_spec(stack_file.project_values(), base_dir=path.parent, stack=stack_file.stack)
    check_memory_for(len(spec.workloads), str(path))
    plan = run_program(
        config=stack_file.config,
        stack=stack_file.stack,
        region=region,
        account_id=spec.account_id or PLACEHOLDER_ACCOUNT_ID,
        config_dir=path.parent,
        previous_outputs=previous_outputs,
        previous_source=previous_source,
    )
    too_big = stack_file.language_host_warning()
    return replace(plan, warnings=(*plan.warnings, too_big)) if too_big else plan


def read_previous_outputs(path: Path) -> dict[str, Any]:
    """``plan --stack-outputs FILE``: the deployed outputs, checked before the program runs against them.

    Every error names FILE (the program, reading them back, would name only the stack).
    """
    outputs = read_outputs_file(path)
    load_deployment(outputs, source=str(path))
    previous_profiles(outputs, source=str(path))
    return outputs


def run_program(
    *,
    config: dict[str, str],
    stack: str,
    region: str,
    account_id: str,
    config_dir: Path,
    program: Path | None = None,
    write_artifacts: bool = False,
    mocks: DeterministicAwsMocks | None = None,
    project: str = PROJECT,
    previous_outputs: Mapping[str, Any] | None = None,
    previous_source: str = "",
) -> Plan:
    """Run the program (``program``, a file, or the packaged one) with ``config``; return what it registered.

    The program writes its rendered files only with ``write_artifacts`` (as under `pulumi up`);
    a plan is otherwise free of side effects. ``previous_outputs`` are what the program reads as its
    stack's outputs from the last update (none: never deployed).
    """
    mocks = mocks or DeterministicAwsMocks(region=region, account_id=account_id)
    monitor = _RecordingMonitor(PreviousOutputsMocks(mocks, previous_outputs, previous_source))
    collector = _WarningCollector()
    logger = logging.getLogger(f"{PROJECT}.plan.{id(collector)}")
    logger.propagate = False
    logger.addHandler(collector)
    outputs: dict[str, Any] = {}

    async def program_part() -> None:
        """The program itself: it registers resources (their RPCs run on) and exports outputs."""
        if program is None:
            from roles_anywhere.components.program import run  # noqa: PLC0415 - imports the Pulumi SDK's resources

            run()
        else:
            runpy.run_path(str(program), run_name="__main__")

    async def outputs_part() -> None:
        root = pulumi_settings.get_root_resource()
        resolved = await resolved_values(getattr(root, "outputs", {}))
        outputs.update(resolved or {})

    with (
        _program_environment(program.parent if program else None, config_dir, offline=not write_artifacts),
        mocked_runtime(mocks, stack=stack, monitor=monitor, logger=logger, project=project),
    ):
        pulumi.runtime.set_all_config(dict(config))
        try:
            # A program that fails as it runs fails here, at once: waiting for the RPCs it started
            # (as run_pulumi_func does) could wait forever on resources it never finished declaring.
            _sync_await(program_part())
            _sync_await(run_pulumi_func(outputs_part))  # every RPC, then the stack outputs
        except pulumi.RunError as err:
            original = original_error(err)
            if original is not None:
                raise original from None
            raise
        finally:
            logger.removeHandler(collector)
    ordered = _planned_resources(monitor, mocks)
    return Plan(
        stack=stack,
        region=region,
        account_id=account_id,
        resources=tuple(r for r in ordered if r.custom),
        components=tuple(r for r in ordered if not r.custom),
        outputs=outputs,
        warnings=tuple(collector.messages),
    )


@contextlib.contextmanager
def mocked_runtime(
    mocks: DeterministicAwsMocks,
    *,
    stack: str,
    monitor: _RecordingMonitor | None = None,
    logger: logging.Logger | None = None,
    project: str = PROJECT,
) -> Iterator[_RecordingMonitor]:
    """Point the Pulumi SDK at ``mocks`` with a fresh event loop and root stack; clean up after.

    Each run gets its own loop (made before ``set_mocks``, whose root stack binds to it), so runs in
    one process do not share state, and every loop the SDK opened is closed at the end.
    """
    monitor = monitor or _RecordingMonitor(PreviousOutputsMocks(mocks))  # a stack never deployed
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pulumi_settings.set_root_resource(None)  # type: ignore[arg-type]
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=False, logger=logger, monitor=monitor
    )

    try:
        yield monitor
    finally:
        monitor.close_thread_loops()
        _cancel_pending(loop)
        # A failed program leaves its Outputs' tasks in the SDK's global set; the next run in this
        # process would wait on them, bound to this closed loop ("Event loop is closed").
        with pulumi_settings.SETTINGS.lock:
            pulumi_settings.SETTINGS.outputs.clear()
        loop.close()
        asyncio.set_event_loop(None)


def _cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what a failed program left running, so closing the loop destroys no pending task.

    The failure itself was raised already; its copies in other tasks are marked as seen, or asyncio
    would print each one again when the process exits.
    """
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.set_exception_handler(lambda _loop, _context: None)  # "exception was never retrieved": it was


@contextlib.contextmanager
def _program_environment(program_dir: Path | None, config_dir: Path, *, offline: bool) -> Iterator[None]:
    """Make a program file's folder importable; tell it where relative paths start and whether to write.

    The previous outputs come from the run's own answer (``PreviousOutputsMocks``), never from a
    ``ROLES_ANYWHERE_PREVIOUS_OUTPUTS`` left in the shell: the same config gives the same plan.
    """
    settings = {
        CONFIG_DIR_ENV: str(config_dir.resolve()),
        OFFLINE_PLAN_ENV: "1" if offline else None,
        PREVIOUS_OUTPUTS_ENV: None,
    }
    previous = {name: os.environ.get(name) for name in settings}
    added = program_dir is not None and str(program_dir) not in sys.path
    if added:
        sys.path.insert(0, str(program_dir))
    try:
        _set_environment(settings)
        yield
    finally:
        if added:
            sys.path.remove(str(program_dir))
        _set_environment(previous)


def _set_environment(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _planned_resources(monitor: _RecordingMonitor, mocks: DeterministicAwsMocks) -> list[PlannedResource]:
    """Join what the monitor saw (parent, protect) with what the mocks saw (inputs, outputs)."""
    registered = monitor.get_registered_resources()
    stack_urn = next((urn for urn, req in monitor.registrations if req.type == _STACK_TYPE), None)
    planned = []
    for urn, request in monitor.registrations:
        if request.type == _STACK_TYPE:
            continue
        state = registered[urn].state if urn in registered else {}
        inputs = mocks.inputs.get((request.type, request.name), {})
        computed = {k: v for k, v in state.items() if k not in inputs or k in ("arn", "name")}
        parent = request.parent if request.parent and request.parent != stack_urn else None
        planned.append(
            PlannedResource(
                urn=urn,
                type=request.type,
                name=request.name,
                parent=parent,
                custom=bool(request.custom),
                protect=bool(request.protect),
                import_id=request.importId,
                inputs=inputs,
                outputs={
                    "arn": computed.pop("arn", None),
                    "id": registered[urn].id,
                    "name": computed.pop("name", None),
                    **computed,
                }
                if request.custom
                else {},
            )
        )
    return _tree_order(planned)


def _tree_order(resources: list[PlannedResource]) -> list[PlannedResource]:
    """Depth-first, children sorted by kind then name: the same order however RPCs interleaved."""
    by_parent: dict[str | None, list[PlannedResource]] = {}
    for resource in resources:
        by_parent.setdefault(resource.parent, []).append(resource)
    ordered: list[PlannedResource] = []

    def visit(parent: str | None) -> None:
        for child in sorted(
            by_parent.get(parent, []), key=lambda r: (_ORDER.get(r.type, 9), r.custom, r.name)
        ):
            ordered.append(child)
            visit(child.urn)

    visit(None)
    return ordered
