"""``stq.store.records``: the stored JSON text is what ``json.dumps`` would write."""

from __future__ import annotations

import json

import pytest

from stq.store.records import dump_command, dump_mapping, dump_strings, load_command, load_mapping

AWKWARD = ["", "plain", 'quote " and \\ backslash', "tab\tnew\nline", "é ü 日本", "\u2028", "\x00"]


@pytest.mark.parametrize("items", [[], ["a"], AWKWARD], ids=["empty", "one", "awkward"])
def test_a_list_of_strings_is_written_as_json_dumps_writes_it(items: list[str]) -> None:
    assert dump_strings(items) == json.dumps(items)
    assert json.loads(dump_strings(items)) == items


@pytest.mark.parametrize("command", ["true", *AWKWARD, ("echo", "a b", "é")])
def test_a_command_round_trips(command: str | tuple[str, ...]) -> None:
    assert dump_command(command) == json.dumps(
        command if isinstance(command, str) else list(command)
    )
    assert load_command(dump_command(command)) == command


@pytest.mark.parametrize(
    "values",
    [{"PY": "311", "OS": "linux"}, dict.fromkeys(AWKWARD[1:], "v") | {"k": AWKWARD[3]}],
    ids=["matrix", "awkward"],
)
def test_a_mapping_is_written_as_json_dumps_writes_it_in_its_order(values: dict) -> None:
    assert dump_mapping(values) == json.dumps(values)
    assert list(load_mapping(dump_mapping(values)) or {}) == list(values)


def test_no_mapping_is_stored_as_null() -> None:
    assert dump_mapping({}) is None and dump_mapping(None) is None
    assert load_mapping(None) is None
