"""Matrix tasks: one written task, one task per combination of its values (docs/workflow-file.md).

``plan_matrices`` works out, before the graph is checked, what each matrix
task expands into: the names ``NAME-v1-v2...`` and the rendered values, in
the order of the keys and of the values. Everything that makes a matrix
unusable is a problem located at the matrix (too many combinations, a name
too long or already taken) or at the value (a float, two values that render
alike); such a matrix stays one task under its own name, so the graph check
still runs and reports only what is really wrong with the dependencies.

``Plan.resolve`` is what a ``depends_on`` entry means once matrices are
expanded: a matrix task's name is all of its expansions, any other name is
itself.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from stq.errors import Problem
from stq.loader.locate import Locator

#: Tasks one matrix may expand into.
MAX_COMBINATIONS = 256
#: Tasks a workflow may have once its matrices are expanded.
MAX_TASKS = 100_000
#: Longest task name (as the schema's name pattern says).
MAX_NAME = 100
#: Largest integer a matrix value may be, in absolute value: 18 digits.
MAX_INTEGER = 10**18 - 1
#: A matrix string value: 1-40 of these characters (the schema says so too).
_STRING_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.")


@dataclass(frozen=True, slots=True)
class Expansion:
    """One task a matrix task becomes: its name and its values as text, in key order."""

    name: str
    values: dict[str, str]


@dataclass
class Plan:
    """The matrices of one document: what each expands into, and what is wrong with them."""

    #: Matrix task name -> its expansions, in order; only matrices that expand cleanly.
    expansions: dict[str, list[Expansion]] = field(default_factory=dict)
    #: Expansion name -> the matrix task it comes from.
    owner: dict[str, str] = field(default_factory=dict)
    #: Names of matrix tasks that could not be expanded: their would-be names are not unknown.
    broken: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    #: Tasks of the workflow once expanded, counted even past ``MAX_TASKS``.
    total: int = 0
    #: Matrix task name -> its number of combinations, expanded or not.
    sizes: dict[str, int] = field(default_factory=dict)
    #: True when expanding stopped at ``MAX_TASKS``: the workflow is too big to check further.
    overflow: bool = False

    def names(self, task: str) -> list[str]:
        """The tasks a written task becomes: its expansions, or itself."""
        group = self.expansions.get(task)
        return [e.name for e in group] if group else [task]

    def count(self, task: str) -> int:
        """How many tasks a written task becomes."""
        return self.sizes.get(task, 1)

    def vague(self, entry: str) -> bool:
        """Whether ``entry`` may name an expansion of a matrix that could not be expanded.

        Such a matrix is already reported; calling its would-be names unknown
        as well would only add noise. Looked up by each ``-`` of the entry, so
        the cost is the entry's length, not the number of such matrices.
        """
        cut = entry.rfind("-") if self.broken else -1
        while cut > 0:
            if entry[:cut] in self.broken:
                return True
            cut = entry.rfind("-", 0, cut)
        return False


def render(value: Any) -> str:
    """A matrix value as text, alike in a task's name and in its environment."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fits(value: Any) -> bool:
    """Whether ``value`` is a matrix value the schema accepts (it reports the others)."""
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -MAX_INTEGER <= value <= MAX_INTEGER
    if isinstance(value, str):
        return 1 <= len(value) <= 40 and _STRING_CHARS.issuperset(value)
    return False


class _Planner:
    """Builds a ``Plan`` one matrix task at a time, in file order."""

    def __init__(self, tasks: dict[str, Any], where: Locator):
        self.tasks = tasks
        self.where = where
        self.plan = Plan()
        #: ``id()`` of a matrix mapping -> its columns, or None if unusable. A matrix
        #: shared by aliases is checked, and reported, once.
        self.seen: dict[int, dict[str, list[str]] | None] = {}

    def add(self, name: str, matrix: dict[str, Any]) -> None:
        columns = self.usable(name, matrix)
        if columns is None:
            self.plan.broken.add(name)
            return
        combinations = math.prod(map(len, columns.values()))
        self.plan.sizes[name] = combinations
        self.plan.total += combinations - 1
        if self.plan.total > MAX_TASKS:
            self.plan.overflow = True  # counted, not expanded: the workflow is refused
            return
        keys = list(columns)
        group = [
            Expansion("-".join((name, *combo)), dict(zip(keys, combo, strict=True)))
            for combo in itertools.product(*columns.values())
        ]
        if self.names_taken(name, group):
            return
        self.plan.expansions[name] = group
        for expansion in group:
            self.plan.owner[expansion.name] = name

    def usable(self, name: str, matrix: dict[str, Any]) -> dict[str, list[str]] | None:
        """The matrix's columns if it can be expanded, checked once per mapping."""
        if id(matrix) in self.seen:
            return self.seen[id(matrix)]
        columns = self.columns(matrix, ["tasks", name, "matrix"])
        if columns is not None:
            combinations = math.prod(map(len, columns.values()))
            if combinations > MAX_COMBINATIONS:
                self.fail(
                    name,
                    f"has {combinations} combinations, more than the limit of {MAX_COMBINATIONS}",
                )
                columns = None
        self.seen[id(matrix)] = columns
        return columns

    def columns(self, matrix: dict[str, Any], path: list[Any]) -> dict[str, list[str]] | None:
        """Each key's values rendered; None when a value is refused (here or by the schema)."""
        columns: dict[str, list[str]] = {}
        usable = True
        for key, values in matrix.items():
            if not isinstance(values, list) or not values:
                usable = False
                continue
            rendered: dict[str, int] = {}
            for index, value in enumerate(values):
                here = [*path, key, index]
                if isinstance(value, float) and value.is_integer():
                    self.float_problem(value, here)
                    usable = False
                elif not _fits(value):
                    usable = False  # the schema says why
                elif (text := render(value)) in rendered:
                    self.repeat_problem(value, text, rendered[text], here)
                    usable = False
                else:
                    rendered[text] = index
            columns[key] = list(rendered)
        return columns if usable and columns else None

    def float_problem(self, value: float, path: list[Any]) -> None:
        """``3.0`` is read as a number; a matrix takes integers, and text that looks like one."""
        raw = self.where.raw_text(path) or repr(value)
        self.plan.problems.append(
            self.where.problem(
                path,
                f"{raw} is a number with a decimal point, which a matrix does not take; "
                f'write "{raw}" if it is text, or an integer',
            )
        )

    def repeat_problem(self, value: Any, text: str, first: int, path: list[Any]) -> None:
        """Two values of one key that name and set the same: ``"311"`` and ``311``."""
        said = repr(text) if isinstance(value, str) else f"{render(value)} (as text {text!r})"
        self.plan.problems.append(
            self.where.problem(
                path,
                f"{said} is already listed at [{first}]; a key's values must differ "
                "once written as text",
            )
        )

    def names_taken(self, name: str, group: list[Expansion]) -> bool:
        """Whether an expanded name is too long or already some task's; if so, say so."""
        for expansion in group:
            taken = expansion.name
            if len(taken) > MAX_NAME:
                self.fail(
                    name,
                    f"expands to a task name longer than {MAX_NAME} characters: {taken!r}",
                )
                return True
            if taken in self.tasks:
                self.fail(name, f"expands to {taken!r}, the name of another task")
                return True
            other = self.plan.owner.get(taken)
            if other is not None:
                self.fail(name, f"expands to {taken!r}, as the matrix of task {other!r} does")
                return True
        return False

    def fail(self, name: str, message: str) -> None:
        self.plan.broken.add(name)
        size = self.plan.sizes.pop(name, None)
        if size is not None:  # counted as one task after all
            self.plan.total -= size - 1
        self.plan.problems.append(
            self.where.problem(["tasks", name, "matrix"], message, at_key=True)
        )


def plan_matrices(tasks: dict[str, Any], where: Locator) -> Plan:
    """What the matrix tasks of ``tasks`` expand into, and the problems of each matrix."""
    planner = _Planner(tasks, where)
    plan = planner.plan
    plan.total = len(tasks)  # each matrix adds its expansions but one
    for name, task in tasks.items():
        if task.__class__ is not dict or "matrix" not in task:
            continue
        matrix = task["matrix"]
        if isinstance(matrix, dict) and matrix:
            planner.add(name, matrix)
        else:
            plan.broken.add(name)  # the schema says why
    return plan
