"""The user docs stay true to the repository: links resolve, every command and route is there.

README.md and docs/*.md are what users read; they must stand on their own
(no pointer outside the repository, no word about how the work was
organised), and the command line and API pages must name everything the
parser and the server's OpenAPI document offer.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import tokenize
from importlib import resources
from pathlib import Path

import pytest

from stq.api import openapi
from stq.cli import build_parser
from stq.errors import ANSWERED
from tests.conftest import ROOT

DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]
IDS = [str(p.relative_to(ROOT)) for p in PAGES]
#: Size the performance page must stay under: the method and the latest figures, no notebook.
PERFORMANCE_LIMIT = 8 * 1024

FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]+`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:...
#: Words that belong to how the work was organised, not to STQ (matched outside code).
FORBIDDEN = {
    "the contract document": re.compile(r"\bSPEC\b"),
    "an issue number": re.compile(r"\bissues?\s+#?\d+", re.I),
    "an item number": re.compile(r"\bitems?\s+#?\d+", re.I),
    "a work session": re.compile(r"\bsessions?\b", re.I),
}


def _prose(page: Path) -> str:
    """The page with its fenced code blocks blanked (lines kept): examples do not count."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), page.read_text(encoding="utf-8"))


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings (lower case, punctuation dropped)."""
    seen: dict[str, int] = {}
    anchors = set()
    for title in HEADING.findall(_prose(page)):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _links(page: Path) -> list[str]:
    return [t for t in LINK.findall(_prose(page)) if not EXTERNAL.match(t)]


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_every_relative_link_resolves_to_a_file_in_the_repository(page: Path) -> None:
    broken = []
    for target in _links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        inside = resolved == ROOT or ROOT in resolved.parents
        if not inside or not resolved.exists():
            broken.append(f"{target}: not a file in the repository")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.name}")
    assert broken == [], f"{page.name}: {broken}"


def test_the_link_checker_sees_links_and_anchors() -> None:
    """The checks above run on something: README links into docs/, and anchors are read."""
    assert any(t.startswith("docs/") for t in _links(ROOT / "README.md"))
    assert "--json-output-for-scripts" in _anchors(ROOT / "docs" / "cli.md")


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_no_page_speaks_of_how_the_work_was_organised(page: Path) -> None:
    raw = page.read_text(encoding="utf-8")
    assert "../shared" not in raw
    prose = INLINE_CODE.sub("", _prose(page))
    found = []
    for what, pattern in FORBIDDEN.items():
        for match in pattern.finditer(prose):
            line = prose.count("\n", 0, match.start()) + 1
            found.append(f"{what}: {match.group(0)!r} near line {line}")
    assert found == [], f"{page.name}: {found}"


def _comments_and_docstrings(source: str) -> str:
    """What a module says in prose: its comments and string literals (docstrings among them)."""
    said = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.STRING):
            said.append(token.string)
    return "\n".join(said)


@pytest.mark.parametrize(
    "module", sorted((ROOT / "stq").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_no_module_cites_what_a_clone_cannot_open(module: Path) -> None:
    """Code comments point at docs/, not at a contract document or an issue tracker."""
    prose = _comments_and_docstrings(module.read_text(encoding="utf-8"))
    # "session" is a word of code (an HTTP session, a process session): not checked here.
    patterns = [p for what, p in FORBIDDEN.items() if what != "a work session"]
    found = [m.group(0) for pattern in patterns for m in pattern.finditer(prose)]
    assert "../shared" not in prose
    assert found == []


def test_performance_page_stays_short() -> None:
    size = (ROOT / "docs" / "performance.md").stat().st_size
    assert size < PERFORMANCE_LIMIT, f"docs/performance.md is {size} bytes"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_stq_command_and_flag_is_in_the_cli_page() -> None:
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    commands = _subcommands()
    assert {"validate", "submit", "worker", "server", "run", "status", "logs"} <= set(commands)
    missing = [f"stq {name}" for name in commands if f"`stq {name}" not in page]
    for name, parser in [("stq", build_parser()), *commands.items()]:
        for action in parser._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help") and not re.search(rf"{flag}(?![\w-])", page):
                    missing.append(f"{name} {flag}")
    assert missing == [], f"docs/cli.md does not mention: {missing}"


def _routes() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation the server's OpenAPI document describes."""
    methods = {"get", "post", "put", "patch", "delete"}
    return [
        (method.upper(), path)
        for path, item in openapi.document()["paths"].items()
        for method in item
        if method in methods
    ]


def test_every_route_the_server_serves_is_in_the_api_page() -> None:
    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    routes = _routes()
    assert ("POST", "/api/v1/attempts/claim") in routes
    missing = []
    for method, path in routes:
        # The page may name a path parameter its own way: {id} for {workflow_id}.
        shape = re.sub(r"\\\{\w+\\\}", r"\\{\\w+\\}", re.escape(path))
        if not re.search(rf"{method} {shape}(?![\w/{{])", page):
            missing.append(f"{method} {path}")
    assert missing == [], f"docs/api.md does not mention: {missing}"


def test_the_api_page_gives_each_error_status_the_code_the_server_answers() -> None:
    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    documented = dict(re.findall(r"^\| (\d{3}) \| `(\w+)` \|", page, re.M))
    answered = {str(kind.http_status): kind.code for kind in ANSWERED}
    assert len(answered) == len(ANSWERED), "one class a status"
    assert documented.pop("500") == "internal"  # the unexpected: no class of its own
    assert {status: answered.get(status) for status in documented} == documented


def test_every_field_of_the_workflow_schema_is_in_the_workflow_file_page() -> None:
    page = (ROOT / "docs" / "workflow-file.md").read_text(encoding="utf-8")
    text = resources.files("stq.schemas").joinpath("workflow.schema.json").read_text("utf-8")
    schema = json.loads(text)
    fields = {
        *schema["properties"],
        *schema["properties"]["defaults"]["properties"],
        *schema["$defs"]["task"]["properties"],
    }
    assert {"name", "tasks", "command", "depends_on", "run_if", "matrix"} <= fields
    missing = sorted(f for f in fields if f"`{f}`" not in page)
    assert missing == [], f"docs/workflow-file.md does not mention: {missing}"
