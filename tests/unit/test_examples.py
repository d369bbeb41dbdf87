"""Every shipped example is a valid workflow that says what it shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from stq.loader import load_workflow_file
from tests.conftest import EXAMPLES

FILES = sorted(EXAMPLES.glob("*.yaml"))
REQUIRED = {
    "build-and-test",
    "word-count",
    "flaky",
    "overrun",
    "failing-branch",
    "labels-priority",
}


def test_all_required_examples_exist() -> None:
    assert REQUIRED <= {path.stem for path in FILES}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_example_validates_and_documents_itself(path: Path) -> None:
    spec = load_workflow_file(path)
    assert spec.name == path.stem
    text = path.read_text()
    assert text.startswith("# yaml-language-server: $schema=../../schemas/workflow.schema.json\n")
    assert "`stq run" in text and "ends:" in text
    assert f"stq-example-out/{path.stem}" in text


def test_word_count_fans_out_and_in() -> None:
    spec = load_workflow_file(EXAMPLES / "word-count.yaml")
    maps = [t for t in spec.tasks if t.depends_on == ("generate",)]
    (reduce,) = [t for t in spec.tasks if t.name == "reduce"]
    assert len(maps) >= 20 and set(reduce.depends_on) == {t.name for t in maps}
