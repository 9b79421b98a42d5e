"""Print how many corpus statements the local engine answers as Spark did, and how the others differ.

python -m tests.differential.report [--all]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.differential.corpus import difference, is_ordered, load_corpus, load_golden
from tests.differential.local import local_answer, local_lakehouse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", help="only this corpus file")
    args = parser.parse_args(argv)
    golden = load_golden()
    queries = [q for q in load_corpus() if args.topic in (None, q.topic)]
    same = 0
    with tempfile.TemporaryDirectory() as home, local_lakehouse(Path(home) / "home") as (svc, principal):
        for query in queries:
            expected = golden.get(query.sql)
            if expected is None:
                print(f"[{query.topic}] no golden answer (run make oracle): {query.sql}")
                continue
            try:
                actual = local_answer(svc, principal, query.sql)
            except Exception as exc:  # a crash is a difference too; show it
                actual = {"error": f"crash {type(exc).__name__}: {exc}"}
            why = difference(expected, actual, ordered=is_ordered(query.sql))
            if why is None:
                same += 1
            else:
                print(f"[{query.topic}] {query.sql}\n    {why}")
    print(f"identical: {same} of {len(queries)} ({100 * same / max(len(queries), 1):.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
