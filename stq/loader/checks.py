"""Checks the schema cannot express: what can never run, and names ``params`` owns.

* A NUL character cannot be in an argument, an environment value or a path
  handed to the operating system, so a command, ``env``, ``params`` or
  matrix value or ``cwd`` holding one could never be run (docs/workflow-file.md). YAML
  refuses a raw NUL, but ``"\\0"`` in a double-quoted string (or
  ``"\\u0000"`` in JSON) makes one.
* A task's ``env`` key or matrix key that is also a ``params`` name would
  hide the param from that task, and ``--param`` promises to reach every
  task, so it is refused at that key.

Both run on the raw document next to the schema check, so every problem of
a file is reported at once; each looks only at values of the right type and
leaves the others to the schema.
"""

from __future__ import annotations

from typing import Any

from stq.errors import Problem
from stq.loader.locate import Locator

_NUL = "\x00"
_NEVER_RUN = "contains a NUL character (\\0): the command could never be run"
_NOT_TEXT = "contains a NUL character (\\0): a description is text and cannot hold one"

Path = list[str | int]


def content_problems(doc: dict[str, Any], where: Locator) -> list[Problem]:
    """NUL characters where the command gets them, and env or matrix keys taken by params."""
    problems = [where.problem(path, _NEVER_RUN) for path in _nul_paths(doc)]
    problems += [where.problem(path, _NOT_TEXT) for path in _nul_descriptions(doc)]
    params = doc.get("params")
    tasks = doc.get("tasks")
    if isinstance(params, dict) and params and isinstance(tasks, dict):
        problems += _taken_names(params, tasks, where)
    return problems


def _nul_paths(doc: dict[str, Any]) -> list[Path]:
    paths = _nul_values(doc.get("params"), ["params"])
    defaults = doc.get("defaults")
    if isinstance(defaults, dict):
        paths += _nul_in_task(defaults, ["defaults"])
    tasks = doc.get("tasks")
    if isinstance(tasks, dict):
        for name, task in tasks.items():
            if isinstance(task, dict) and _may_hold_nul(task):
                paths += _nul_in_task(task, ["tasks", name])
    return paths


def _nul_descriptions(doc: dict[str, Any]) -> list[Path]:
    """Descriptions holding a NUL: PostgreSQL's text refuses one, so every store does."""
    paths: list[Path] = []
    if _has_nul(doc.get("description")):
        paths.append(["description"])
    tasks = doc.get("tasks")
    if isinstance(tasks, dict):
        paths += (
            ["tasks", name, "description"]
            for name, task in tasks.items()
            if isinstance(task, dict) and _has_nul(task.get("description"))
        )
    return paths


def _has_nul(value: Any) -> bool:
    return isinstance(value, str) and _NUL in value


def _may_hold_nul(task: dict[str, Any]) -> bool:
    """A quick look that clears most tasks: a string command, no env, cwd or matrix.

    Written for 100,000-task files, where a full look at each task costs more
    than the rest of this check.
    """
    command = task.get("command")
    if not isinstance(command, str) or _NUL in command:
        return True
    return "env" in task or "cwd" in task or "matrix" in task


def _nul_in_task(task: dict[str, Any], path: Path) -> list[Path]:
    """The places in one task (or the defaults) where a NUL would reach the command."""
    paths = []
    command = task.get("command")
    if isinstance(command, str):
        if _NUL in command:
            paths.append([*path, "command"])
    elif isinstance(command, list):
        paths += (
            [*path, "command", index]
            for index, item in enumerate(command)
            if isinstance(item, str) and _NUL in item
        )
    cwd = task.get("cwd")
    if isinstance(cwd, str) and _NUL in cwd:
        paths.append([*path, "cwd"])
    paths += _nul_values(task.get("env"), [*path, "env"])
    matrix = task.get("matrix")
    if isinstance(matrix, dict):
        for key, values in matrix.items():
            if isinstance(values, list):
                paths += (
                    [*path, "matrix", key, index]
                    for index, value in enumerate(values)
                    if isinstance(value, str) and _NUL in value
                )
    return paths


def _nul_values(mapping: Any, path: Path) -> list[Path]:
    if not isinstance(mapping, dict):
        return []
    return [
        [*path, key] for key, value in mapping.items() if isinstance(value, str) and _NUL in value
    ]


def _taken_names(params: dict[str, Any], tasks: dict[str, Any], where: Locator) -> list[Problem]:
    """Each task ``env`` or matrix key that is a param's name, at the key."""
    problems = []
    for name, task in tasks.items():
        if not isinstance(task, dict):
            continue
        for field in ("env", "matrix"):
            own = task.get(field)
            if not isinstance(own, dict):
                continue
            for key in own:
                if key in params:
                    problems.append(
                        where.problem(
                            ["tasks", name, field, key],
                            f"{key!r} is a param: a task's {field} may not set it "
                            "(change it in params, or with --param)",
                            at_key=True,
                        )
                    )
    return problems
