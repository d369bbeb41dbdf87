"""The ``stq`` command: one argparse tree, one place that turns errors into exit codes.

Each subcommand is a small function taking the parsed arguments and the
``Settings``; the heavy lifting lives in the modules named after what they do
(``stq.loader``, ``stq.client``, ``stq.worker``, ``stq.local``, ...). ``main``
is the only place that catches: an ``StqError`` becomes one line on stderr and
its exit code, anything unexpected one line too (the traceback only with ``-v``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from stq import __version__
from stq.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, StqError, UsageError, WorkflowInvalid
from stq.lookup import NAME_SEARCH_WORKFLOWS
from stq.model import WorkflowSpec
from stq.server import DEFAULT_BIND, default_workers
from stq.settings import Settings

if TYPE_CHECKING:  # imported lazily: `stq validate` needs no HTTP client
    from stq.client import Client

T = TypeVar("T")

EPILOG = """\
environment:
  STQ_SERVER             server URL for submit/status/logs/runners/cancel/retry and
                         worker (default http://127.0.0.1:8000)
  STQ_TOKEN              bearer token sent to (client) or required by (server) the API
  STQ_DB                 server store: a file path (default stq.db) or a postgresql:// URL
  STQ_HEARTBEAT_TIMEOUT  server: seconds without a heartbeat before an attempt is lost (60)
  STQ_ALLOWED_HOSTS      server: host names clients use beyond loopback (comma-separated),
                         e.g. behind a proxy; with no token, other Host names are refused

examples:
  stq validate workflows/examples/*.yaml
  stq run workflows/examples/build-and-test.yaml -j 4
  stq server --bind 127.0.0.1:8000 &  stq worker &  stq submit etl.yaml --wait
  stq submit ci.yaml --param BRANCH=dev --wait --json | jq -r .state
"""

Handler = Callable[[argparse.Namespace, Settings], int]
#: Most local runners ``stq run -j`` starts. Each is a Python process (~23 MB resident, a
#: connection to the embedded server); past a few per CPU they only wait on each
#: other, and a value like 1000000 is a typo that would fork until memory runs out.
MAX_JOBS = 256
#: Seconds ``submit --wait`` keeps making one read through an outage before it gives up.
WAIT_RETRY_FOR = 60.0
#: Workflows ``stq status`` lists in its table when no ``--limit`` is given.
STATUS_LIMIT = 20


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors go through ``main``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _ArgparseError(f"{self.prog}: {message} (see '{self.prog} --help')")


class _ArgparseError(Exception):
    pass


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    """Check files offline; print every problem of every file, and a line per valid one."""
    status = EXIT_OK
    for path in args.files:
        spec = _read_workflow(path, sys.stdout)
        if spec is None:
            status = EXIT_FAILED
        elif not args.quiet:
            count = len(spec.tasks)
            print(f"{path}: ok ({count} task{'' if count == 1 else 's'})")
    return status


def _read_workflow(path: str, problems: TextIO) -> WorkflowSpec | None:
    """Read and check one workflow file; None after printing each problem to ``problems``.

    The one way every command reads a file, so ``submit`` and ``run`` accept
    exactly what ``validate`` accepts (pipes such as ``<(...)`` too) and
    refuse the rest with the same ``FILE:LINE:COL: message`` lines: a
    directory, an empty file and a missing one are all problems of the file.
    """
    from stq.loader import load_workflow_file

    return _checked(lambda: load_workflow_file(path), problems)


def _checked(read: Callable[[], T], problems: TextIO) -> T | None:
    """``read()``, or None after printing each problem of the file to ``problems``."""
    try:
        return read()
    except WorkflowInvalid as ex:
        for problem in ex.problems:
            print(problem, file=problems)
        return None


def _submit_body(args: argparse.Namespace, verb: str) -> tuple[WorkflowSpec, bytes]:
    """The file of ``submit`` or ``run``, checked, and the body that submits it as written.

    ``--param`` values replace the file's (a name it does not declare is a
    usage error, exit 2); problems of the file go to stderr, exit 1. The body
    is the document as the file writes it, defaults and matrices unexpanded:
    the server expands them, so a file far under the body limit stays so.
    """
    from stq.loader import parse_param_flags, submit_body

    params = parse_param_flags(args.param)
    checked = _checked(lambda: submit_body(args.file, params), sys.stderr)
    if checked is None:
        raise StqError(f"nothing was {verb}: fix {args.file} as the lines above say")
    return checked


def _client(args: argparse.Namespace, settings: Settings) -> Client:
    from stq.client import Client

    return Client(getattr(args, "server", None) or settings.server_url, settings.token)


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    """Validate, submit (once, however many answers are lost), print the id; --wait follows it.

    With ``--json`` stdout is one JSON document: the submit's answer, or with
    ``--wait`` the final workflow, and no progress lines (they go to stderr
    when it is a terminal, else nowhere).
    """
    from stq.client import READ_SLACK
    from stq.gc_pause import gc_paused
    from stq.progress import Progress, summary

    if args.junit and not args.wait:
        raise UsageError("--junit needs --wait: the report is written when the workflow ends")
    client = _client(args, settings)
    with gc_paused():  # a big workflow is millions of objects and no cycles
        _, body = _submit_body(args, "submitted")
        timeout = args.answer_timeout or READ_SLACK
        answer = client.submit(body, read_timeout=timeout, on_retry=_say)
    if not args.wait:
        print(_json_text(answer) if args.json else answer["id"], flush=True)
        return EXIT_OK
    if not args.json:
        print(answer["id"], flush=True)
    reads = _PatientReads(client)
    with _progress_stream(args.json) as out:
        final = Progress(reads, out, tty=out.isatty()).follow(answer["id"])  # type: ignore[arg-type]
    if args.json:
        print(_json_text(final), flush=True)
    else:
        summary(reads, final, sys.stdout)  # type: ignore[arg-type]
    if args.junit:
        from stq.junit import ApiAttempts, write_report

        write_report(args.junit, final, ApiAttempts(reads))  # type: ignore[arg-type]
    return EXIT_OK if final["state"] == "completed" else EXIT_FAILED


@contextmanager
def _progress_stream(json_out: bool) -> Iterator[TextIO]:
    """Where ``--wait`` draws progress: stdout; with ``--json`` a terminal's stderr, or nowhere."""
    if not json_out:
        yield sys.stdout
    elif sys.stderr.isatty():
        yield sys.stderr
    else:
        with open(os.devnull, "w") as nowhere:
            yield nowhere


def _json_text(data: Any) -> str:
    """One JSON document as ``--json`` prints it: what the API answered, indented."""
    return json.dumps(data, indent=2)


def _param_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="K=V",
        help="set the value of a param the file declares (repeatable); "
        "a name it does not declare is refused",
    )


def _json_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout")


def _junit_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--junit",
        metavar="FILE",
        help="also write a JUnit XML report there when the workflow ends (for CI test views)",
    )


def _say(message: str) -> None:
    """A line on stderr while a command goes on (stdout keeps only its results)."""
    print(f"stq: {message}", file=sys.stderr, flush=True)


class _PatientReads:
    """The client's reads, each made again through an outage (``retry_outages``).

    ``--wait`` follows a workflow that runs on whatever happens to this
    command: a slow answer or a restarting server is no reason to stop
    following it, and a server that took the connection but answered late
    is not "unreachable". Only reads go through here: they are safe to repeat.
    """

    def __init__(self, client: Client):
        self._client = client

    def __getattr__(self, name: str) -> Callable[..., Any]:
        from stq.client import retry_outages

        read = getattr(self._client, name)

        def patient(*args: Any, **kwargs: Any) -> Any:
            return retry_outages(
                lambda: read(*args, **kwargs),
                url=self._client.url,
                within=WAIT_RETRY_FOR,
                on_retry=_say,
            )

        return patient


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Serve one or more servers until stopped."""
    from stq.worker import run_worker

    labels = [x.strip() for x in (args.labels or "").split(",") if x.strip()]
    return run_worker(
        args.urls or [settings.server_url],
        token=settings.token,
        labels=labels,
        name=args.name,
        exit_when_idle=args.exit_when_idle,
    )


def cmd_server(args: argparse.Namespace, settings: Settings) -> int:
    """Check the bind is safe, then become gunicorn."""
    from stq.server import serve

    return serve(args.bind, args.db, args.workers, args.insecure, settings.token)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """The whole workflow on this machine: embedded server, N local runners."""
    from stq.local import run_local

    spec, body = _submit_body(args, "run")
    return run_local(
        spec, body, args.jobs, args.db, sys.stdout, verbose=args.verbose, junit=args.junit
    )


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """The workflows, or one workflow's tasks; --json for scripts (every workflow, every page)."""
    from stq.progress import workflow_table

    client = _client(args, settings)
    if args.workflow_id is not None:  # '' too: the client refuses an empty id
        data = client.workflow(args.workflow_id)
        print(_json_text(data) if args.json else _workflow_text(client, data))
        return EXIT_OK
    if args.json:
        listed = client.workflows(limit=args.limit) if args.limit else client.every_workflow()
        print(_json_text({"workflows": listed}))
    else:
        print(workflow_table(client.workflows(limit=args.limit or STATUS_LIMIT)))
    return EXIT_OK


def _workflow_text(client: Client, wf: dict[str, Any]) -> str:
    """``stq status ID``: the task table under the head and params, then details and waits."""
    from stq.progress import last_failed_attempts, task_table, workflow_head
    from stq.views import details_table, params_line, waits_table

    tasks = wf.get("tasks") or []
    lines = [workflow_head(wf), params_line(wf.get("params"))]
    lines.append(task_table(wf, last_failed_attempts(client, tasks)))
    parts = ["\n".join(filter(None, lines)), details_table(tasks), waits_table(tasks)]
    return "\n\n".join(filter(None, parts))


def cmd_logs(args: argparse.Namespace, settings: Settings) -> int:
    """The captured output of a task's attempt (default: the last); -f follows it live."""
    from stq import follow
    from stq.lookup import find_task

    client = _client(args, settings)
    task = find_task(client, args.task_id)
    sink = follow.Json(sys.stdout) if args.json else follow.Text(sys.stdout)
    if args.follow:
        follow.follow(client, task, args.attempt, sink)
    else:
        follow.show(client, task, args.attempt, sink)
    return EXIT_OK


def cmd_runners(args: argparse.Namespace, settings: Settings) -> int:
    """The runners the server heard from in the last 10 minutes; --json for scripts."""
    from stq.views import runners_table

    runners = _client(args, settings).runners()
    print(_json_text({"runners": runners}) if args.json else runners_table(runners))
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    from stq.progress import workflow_state

    answer = _client(args, settings).cancel(args.workflow_id) or {}
    print(f"{args.workflow_id}: {workflow_state(answer) if 'state' in answer else 'cancelled'}")
    return EXIT_OK


def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    answer = _client(args, settings).retry(args.workflow_id) or {}
    print(f"{args.workflow_id}: {answer.get('state', 'running')}")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    """Forget a finished workflow with its tasks and output; a running one is refused."""
    _client(args, settings).delete(args.workflow_id)
    print(f"{args.workflow_id}: deleted")
    return EXIT_OK


def _number(kind: type, low: float, high: float | None = None) -> Callable[[str], Any]:
    """An argparse type: a number of ``kind`` from ``low`` up to ``high`` (if given)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}: {text!r}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}: {text!r}")
        return value

    return parse


def _server_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", metavar="URL", help="server URL (env: STQ_SERVER)")


def _command(sub: Any, name: str, summary: str, handler: Handler) -> argparse.ArgumentParser:
    """A subcommand whose own ``--help`` opens with the line ``stq --help`` lists it with."""
    p = sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
    p.set_defaults(handler=handler)
    return p


def _workflow_id(p: argparse.ArgumentParser, **kw: Any) -> None:
    p.add_argument(
        "workflow_id", metavar="WORKFLOW_ID", help="a workflow's id, as stq status lists it", **kw
    )


def _add_client_commands(sub: Any) -> None:
    p = _command(sub, "submit", "submit a workflow to a server and print its id", cmd_submit)
    p.add_argument("file", metavar="FILE", help="the workflow file (YAML)")
    p.add_argument("--wait", action="store_true", help="follow it; exit 1 if it fails")
    _param_flag(p)
    _junit_flag(p)
    _json_flag(p, "the server's answer (with --wait: the final workflow)")
    p.add_argument(
        "--answer-timeout",
        type=_number(float, 1),
        metavar="SECONDS",
        help="wait this long for the server's answer before sending the submit again with "
        "the same Idempotency-Key (default 15; tries stop after 60 s in all)",
    )
    _server_flag(p)

    p = _command(sub, "status", "show the workflows, or one workflow's tasks", cmd_status)
    _workflow_id(p, nargs="?")
    _json_flag(p, "the API's answer (the list: every workflow, unless --limit)")
    p.add_argument(
        "--limit",
        type=_number(int, 1),
        help=f"workflows listed (default {STATUS_LIMIT}; with --json, all)",
    )
    _server_flag(p)

    p = _command(sub, "logs", "show the output of a task's attempt", cmd_logs)
    p.add_argument(
        "task_id",
        metavar="TASK",
        help="a task's id, as stq status WORKFLOW_ID lists it, or its name when no other "
        f"task of the {NAME_SEARCH_WORKFLOWS} newest workflows has it",
    )
    p.add_argument(
        "--attempt", type=_number(int, 1), metavar="N", help="attempt to show (default: the last)"
    )
    p.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="print output as the command prints it, through each retry, until the task ends",
    )
    _json_flag(p, "the attempt and its output (with -f: an object per line as output comes)")
    _server_flag(p)

    p = _command(sub, "runners", "show the runners seen in the last 10 minutes", cmd_runners)
    _json_flag(p, "the API's answer")
    _server_flag(p)

    for name, handler, text in [
        ("cancel", cmd_cancel, "cancel a workflow: its unfinished tasks fail"),
        ("retry", cmd_retry, "retry a workflow's failed tasks"),
        ("delete", cmd_delete, "forget a finished workflow, its tasks and their output"),
    ]:
        p = _command(sub, name, text, handler)
        _workflow_id(p)
        _server_flag(p)


def _add_process_commands(sub: Any) -> None:
    p = _command(sub, "worker", "run a runner against one or more servers", cmd_worker)
    p.add_argument("urls", nargs="*", metavar="URL", help="server URLs (env: STQ_SERVER)")
    p.add_argument("--labels", metavar="a,b", help="labels this runner has")
    p.add_argument("--name", help="runner name (default: host-pid)")
    p.add_argument(
        "--exit-when-idle",
        type=_number(float, 0),
        metavar="SECONDS",
        help="exit after this many seconds with nothing to run (default: never)",
    )

    p = _command(sub, "server", "run the API server under gunicorn", cmd_server)
    p.add_argument(
        "--bind",
        default=DEFAULT_BIND,
        metavar="HOST:PORT",
        help="address to listen on (default %(default)s; beyond loopback it needs "
        "STQ_TOKEN or --insecure)",
    )
    p.add_argument("--db", metavar="PATH_OR_URL", help="store (env: STQ_DB, default stq.db)")
    p.add_argument(
        "--workers",
        type=_number(int, 1),
        default=default_workers(),
        metavar="N",
        help="gunicorn worker processes (default: 2 per CPU, at most 8; here %(default)s)",
    )
    p.add_argument("--insecure", action="store_true", help="allow a public bind with no token")

    p = _command(sub, "run", "run a workflow start to end on this machine", cmd_run)
    p.add_argument("file", metavar="FILE", help="the workflow file (YAML)")
    p.add_argument(
        "-j",
        "--jobs",
        type=_number(int, 1, MAX_JOBS),
        default=min(MAX_JOBS, os.cpu_count() or 1),
        metavar="N",
        help=f"local runners, 1 to {MAX_JOBS} (default: one per CPU, here %(default)s)",
    )
    p.add_argument("--db", metavar="PATH", help="SQLite file to keep (default: a temp file)")
    _param_flag(p)
    _junit_flag(p)


def build_parser() -> argparse.ArgumentParser:
    """Every ``stq`` subcommand and flag; help texts name their environment variables."""
    parser = _Parser(
        prog="stq",
        description="SimpleTaskQueue: run a DAG of shell commands across many machines.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"stq {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="more output; tracebacks on errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = _command(sub, "validate", "check workflow files offline", cmd_validate)
    p.add_argument("files", nargs="+", metavar="FILE", help="workflow files (YAML) to check")
    p.add_argument(
        "-q", "--quiet", action="store_true", help="print only problems, no line per valid file"
    )

    _add_client_commands(sub)
    _add_process_commands(sub)
    for command in sub.choices.values():  # -v works after the subcommand too
        command.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="more output"
        )
    return parser


def _skip_unlogged_record_fields() -> None:
    """Stop logging from gathering what the format above never prints.

    The switches of the logging HOWTO's "Optimization" section: caller
    (a stack walk), thread, process. A runner logs two lines per attempt;
    this took each from ~85 to ~50 us on the 2-core benchmark machine.
    """
    logging._srcfile = None  # the HOWTO's own switch for caller information
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def _lowercase_start(message: str) -> str:
    """'No task with id ...' -> 'no task with id ...': every line of ``stq`` starts lowercase.

    The server's messages are sentences; only a capitalised first word is
    lowered, so a name such as ``STQ_TOKEN`` or a URL stays as it is.
    """
    first = message.split(" ", 1)[0]
    if first[:1].isupper() and first[1:].islower():
        return message[0].lower() + message[1:]
    return message


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``stq`` command; never let a traceback reach the user unless ``-v``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _skip_unlogged_record_fields()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "handler", None):
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return args.handler(args, Settings.from_env())
    except _ArgparseError as ex:
        print(ex, file=sys.stderr)
        return EXIT_USAGE
    except StqError as ex:
        if verbose:
            traceback.print_exc()
        print(f"stq: {_lowercase_start(ex.message)}", file=sys.stderr)
        return ex.exit_code
    except KeyboardInterrupt:
        print("stq: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as ex:  # the last line of defence: one line, not a traceback
        if verbose:
            traceback.print_exc()
        print(f"stq: unexpected error: {type(ex).__name__}: {ex} (run with -v)", file=sys.stderr)
        return EXIT_FAILED
