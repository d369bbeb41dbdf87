"""What JSON Schema validation costs: request bodies, a 100,000-task document, end to end.

Per validator (``jsonschema`` alone, the ``jsonschema-rs`` STQ uses, and
``fastjsonschema`` when it is installed, for comparison):

* a claim body and a result body carrying ``next`` (one of each per task), in
  microseconds per validation, best of 5 rounds;
* the document ``POST /api/v1/workflows`` receives for ``dags.fan_out(100000)``
  (what ``stq submit`` sends), in seconds, best of 3 (``jsonschema`` alone: 1 run);

then, as a user sees them, ``stq validate`` of that workflow file and ``stq submit``
of it to a fresh ``stq server`` (each must stay under 10 s on the 2-core box).

Run: ``.venv/bin/python bench/bench_schema.py [--skip-slow]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import dags, procs  # noqa: E402
from stq.api import bodies  # noqa: E402
from stq.loader import submit_body, workflow_schema  # noqa: E402

CLAIM = {"runner": "runner-1", "labels": ["gpu"], "wait": 25}
RESULT = {
    "status": "completed",
    "exit_code": 0,
    "output": "ok\n",
    "message": None,
    "next": {"runner": "runner-1", "labels": []},
}
TASKS = 100_000

Check = Callable[[Any], Any]


def _jsonschema(schema: dict[str, Any]) -> Check:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    return lambda doc: next(validator.iter_errors(doc), None) is None


def _jsonschema_rs(schema: dict[str, Any]) -> Check:
    import jsonschema_rs

    return jsonschema_rs.Draft202012Validator(schema).is_valid


def _fastjsonschema(schema: dict[str, Any]) -> Check | None:
    try:
        import fastjsonschema
    except ImportError:
        return None
    return fastjsonschema.compile(schema, use_default=False)  # raises on invalid


CANDIDATES = {
    "jsonschema": _jsonschema,
    "jsonschema-rs": _jsonschema_rs,
    "fastjsonschema": _fastjsonschema,
}


def _micros(check: Check, doc: Any, number: int) -> float:
    return min(timeit.repeat(lambda: check(doc), number=number, repeat=5)) / number * 1e6


def _seconds(check: Check, doc: Any, repeat: int) -> float:
    gc.disable()  # as the loader and the API run it (stq.gc_pause)
    try:
        return min(timeit.repeat(lambda: check(doc), number=1, repeat=repeat))
    finally:
        gc.enable()


def bodies_and_document(big: Path, skip_slow: bool) -> None:
    doc = json.loads(submit_body(big)[1])  # what `stq submit` sends
    schema = workflow_schema()
    for name, make in CANDIDATES.items():
        if make(bodies.CLAIM) is None:
            print(f"{name}: not installed")
            continue
        slow = name == "jsonschema"
        claim = _micros(make(bodies.CLAIM), CLAIM, 20_000 if slow else 200_000)
        result = _micros(make(bodies.RESULT), RESULT, 20_000 if slow else 200_000)
        line = f"{name}: claim {claim:.2f} us, result {result:.2f} us"
        if not (slow and skip_slow):
            seconds = _seconds(make(schema), doc, 1 if slow else 3)
            line += f", {TASKS:,}-task document {seconds:.3f} s"
        print(line, flush=True)


def _timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=procs.clean_env(), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def end_to_end(tmp: Path, big: Path) -> None:
    validate = _timed([procs.STQ, "validate", str(big)], tmp)
    with procs.server(tmp / "big.db") as (url, _):
        submit = _timed([procs.STQ, "submit", str(big), "--server", url], tmp)
    print(f"stq validate: {validate:.2f} s, stq submit: {submit:.2f} s ({TASKS:,} tasks)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--skip-slow", action="store_true", help="no jsonschema-alone document run (~10-30 s)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        big = dags.write_workflow(tmp / "fan.yaml", "fan", dags.fan_out(TASKS))
        bodies_and_document(big, args.skip_slow)
        end_to_end(tmp, big)


if __name__ == "__main__":
    main()
