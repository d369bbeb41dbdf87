"""A task named by its id or, when that is unambiguous, by its name.

Task ids are what the API knows, but the name is what a person remembers
from the workflow file (``stq logs flaky-step``). A name is looked for among
the tasks of the workflows ``stq status`` lists (the newest
``NAME_SEARCH_WORKFLOWS``): one read per workflow, however old the server's
history is. It is accepted when exactly one of those tasks has it; otherwise
the one-line error says where ids are shown, and names the candidates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stq.errors import NotFound

if TYPE_CHECKING:
    from stq.worker.client import Client

#: Newest workflows whose tasks a task name is looked for in: those ``stq status`` lists.
NAME_SEARCH_WORKFLOWS = 20
#: Candidates named in the error for an ambiguous name.
CANDIDATES_SHOWN = 5


def find_task(client: Client, id_or_name: str) -> dict[str, Any]:
    """The task (with its attempts) whose id, or else whose unique name, is ``id_or_name``."""
    try:
        return client.task(id_or_name)
    except NotFound:
        pass
    matches = [
        task
        for workflow in client.workflows(limit=NAME_SEARCH_WORKFLOWS)
        for task in client.tasks(workflow=workflow["id"])
        if task["name"] == id_or_name
    ]
    if len(matches) == 1:
        return client.task(matches[0]["id"])
    raise NotFound(_not_found(id_or_name, matches))


def _not_found(id_or_name: str, matches: list[dict[str, Any]]) -> str:
    """One line: no such id or name, or which tasks share the name; where ids are shown."""
    hint = "task ids are shown by stq status WORKFLOW_ID"
    if not matches:
        return (
            f"no task with id or name {id_or_name!r} in the {NAME_SEARCH_WORKFLOWS} newest "
            f"workflows: {hint}"
        )
    shown = ", ".join(
        f"{t['id']} (workflow {t['workflow_id']})" for t in matches[:CANDIDATES_SHOWN]
    )
    more = len(matches) - CANDIDATES_SHOWN
    if more > 0:
        shown += f" and {more} more"
    return f"{len(matches)} tasks are named {id_or_name!r}: {shown}; give its id ({hint})"
