"""A schema-valid document to the frozen ``WorkflowSpec`` the server and runner share.

Defaults are applied here (a task's ``env`` merged over ``defaults.env``, other
fields replacing the default), durations become seconds, commands become a
string or an argv tuple and env values become the text they were written as.
Checks the schema cannot express (a duration of ``"0s"``) are made here too.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from stq.durations import parse_duration
from stq.errors import Problem
from stq.loader.locate import Locator
from stq.model import TaskSpec, WorkflowSpec

_DURATIONS = ("duration", "retry_delay")


def _env_text(value: Any, raw: str | None) -> str:
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

    def __init__(self, where: Locator):
        self.where = where
        self.problems: list[Problem] = []

    def seconds(self, value: Any, path: list[Any]) -> float | None:
        if value is None:
            return None
        try:  # a retry delay may be 0: a task can take back its defaults' delay
            return parse_duration(value, zero_ok=path[-1] == "retry_delay")
        except ValueError as ex:
            self.problems.append(self.where.problem(path, str(ex)))
            return None

    def env(self, env: dict[str, Any], path: list[Any]) -> dict[str, str]:
        return {k: _env_text(v, self.where.raw_text([*path, k])) for k, v in env.items()}

    def task(
        self, name: str, task: dict[str, Any], defaults: dict[str, Any], base_env: MappingProxyType
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
            depends_on=tuple(task.get("depends_on", ())),
            duration=duration,
            max_attempts=fields.get("max_attempts", 1),
            env=env,
            cwd=fields.get("cwd"),
            labels=tuple(fields.get("labels", ())),
            priority=fields.get("priority", 0),
            retry_delay=retry_delay or 0.0,
        )


def normalize(doc: dict[str, Any], where: Locator) -> tuple[WorkflowSpec, list[Problem]]:
    """The spec, and the problems only normalization can see."""
    norm = _Normalizer(where)
    defaults = dict(doc.get("defaults", {}))
    base_env = MappingProxyType(norm.env(defaults.pop("env", {}), ["defaults", "env"]))
    for key in _DURATIONS:
        if key in defaults:
            defaults[key] = norm.seconds(defaults[key], ["defaults", key])
    tasks = tuple(norm.task(name, task, defaults, base_env) for name, task in doc["tasks"].items())
    spec = WorkflowSpec(name=doc["name"], tasks=tasks, description=doc.get("description"))
    return spec, norm.problems
