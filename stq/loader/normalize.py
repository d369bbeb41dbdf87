"""A schema-valid document to the frozen ``WorkflowSpec`` the server and runner share.

Defaults are applied here (a task's ``env`` merged over ``defaults.env``, other
fields replacing the default), durations become seconds, commands become a
string or an argv tuple and env values become the text they were written as.
Matrix tasks become their expansions (``stq.loader.matrix``), in place, each
with its values in its environment. A task's environment, lowest first:
``defaults.env``, ``params``, its own ``env``, its matrix values.
Checks the schema cannot express (a duration of ``"0s"``) are made here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from stq.durations import parse_duration
from stq.errors import Problem
from stq.loader.locate import Locator
from stq.loader.matrix import Plan
from stq.model import RunIf, TaskSpec, WorkflowSpec

_DURATIONS = ("duration", "retry_delay")


def env_text(value: Any, raw: str | None) -> str:
    """``true`` -> ``"true"``, ``3`` -> ``"3"``: the YAML text when we have it."""
    if isinstance(value, str):
        return value
    if raw is not None:
        return raw
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


class _Normalizer:
    """Collects duration problems while building ``TaskSpec``s."""

    def __init__(self, where: Locator, edges: dict[str, list[str]] | None):
        self.where = where
        #: Each expanded task's dependencies; None without matrices: then they are as written.
        self.edges = edges
        self.problems: list[Problem] = []
        #: One tuple per dependency list: a matrix task's expansions share theirs.
        self.deps: dict[int, tuple[str, ...]] = {}
        #: ``defaults.run_if``, or the default's default.
        self.run_if = RunIf.ON_SUCCESS

    def seconds(self, value: Any, path: list[Any]) -> float | None:
        if value is None:
            return None
        try:  # a retry delay may be 0: a task can take back its defaults' delay
            return parse_duration(value, zero_ok=path[-1] == "retry_delay")
        except ValueError as ex:
            self.problems.append(self.where.problem(path, str(ex)))
            return None

    def env(self, env: dict[str, Any], path: list[Any]) -> dict[str, str]:
        return {k: env_text(v, self.where.raw_text([*path, k])) for k, v in env.items()}

    def shared_depends_on(self, name: str) -> tuple[str, ...]:
        """The dependencies of an expansion, one tuple for all expansions of its matrix."""
        listed = self.edges[name]  # type: ignore[index]
        deps = self.deps.get(id(listed))
        if deps is None:
            deps = self.deps[id(listed)] = tuple(listed)
        return deps

    def task(
        self, name: str, task: dict[str, Any], defaults: dict[str, Any], base_env: Mapping
    ) -> TaskSpec:
        """One task with the defaults (already normalized) filled in.

        Written for 100,000-task files: no work for what a task leaves out, and
        tasks without ``env`` share the workflow's one (read-only) mapping.
        """
        fields = {**defaults, **task} if defaults else task
        duration, retry_delay = (
            self.seconds(task[key], ["tasks", name, key]) if key in task else defaults.get(key)
            for key in _DURATIONS
        )
        own_env = task.get("env")
        env = (
            MappingProxyType({**base_env, **self.env(own_env, ["tasks", name, "env"])})
            if own_env
            else base_env
        )
        command = fields["command"]
        return TaskSpec(
            name=name,
            command=command if isinstance(command, str) else tuple(command),
            depends_on=tuple(
                task.get("depends_on", ()) if self.edges is None else self.edges.get(name, ())
            ),
            duration=duration,
            max_attempts=fields.get("max_attempts", 1),
            env=env,
            cwd=fields.get("cwd"),
            labels=tuple(fields.get("labels", ())),
            priority=fields.get("priority", 0),
            retry_delay=retry_delay or 0.0,
            description=task.get("description"),
            run_if=RunIf(task["run_if"]) if "run_if" in task else self.run_if,
        )

    def expansions(self, written: TaskSpec, plan: Plan) -> list[TaskSpec]:
        """The tasks a matrix task becomes: its fields, their names, values and dependencies."""
        return [
            TaskSpec(
                name=expansion.name,
                command=written.command,
                depends_on=self.shared_depends_on(expansion.name),
                duration=written.duration,
                max_attempts=written.max_attempts,
                env=MappingProxyType({**written.env, **expansion.values}),
                cwd=written.cwd,
                labels=written.labels,
                priority=written.priority,
                retry_delay=written.retry_delay,
                description=written.description,
                run_if=written.run_if,
                matrix=MappingProxyType(expansion.values),
                matrix_of=written.name,
            )
            for expansion in plan.expansions[written.name]
        ]


def normalize(
    doc: dict[str, Any], where: Locator, plan: Plan, edges: dict[str, list[str]] | None
) -> tuple[WorkflowSpec, list[Problem]]:
    """The spec, and the problems only normalization can see.

    ``edges``: each expanded task's dependencies, as the graph check found
    them; None when there is no matrix: then they are as written.
    """
    norm = _Normalizer(where, edges)
    defaults = dict(doc.get("defaults", {}))
    params = norm.env(doc.get("params", {}), ["params"])
    base_env = MappingProxyType(
        {**norm.env(defaults.pop("env", {}), ["defaults", "env"]), **params}
    )
    for key in _DURATIONS:
        if key in defaults:
            defaults[key] = norm.seconds(defaults[key], ["defaults", key])
    norm.run_if = RunIf(defaults.pop("run_if", RunIf.ON_SUCCESS))
    written = (norm.task(name, task, defaults, base_env) for name, task in doc["tasks"].items())
    if plan.expansions:
        tasks = tuple(
            expanded
            for spec in written
            for expanded in (
                norm.expansions(spec, plan) if spec.name in plan.expansions else [spec]
            )
        )
    else:
        tasks = tuple(written)
    workflow = WorkflowSpec(
        name=doc["name"],
        tasks=tasks,
        description=doc.get("description"),
        params=MappingProxyType(params),
    )
    return workflow, norm.problems
