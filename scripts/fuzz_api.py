"""A long schemathesis run against the API: the property-based tests of election_api_tests/test_fuzz.py with many
more examples per route and mode, in-process (ASGI) or against the app served by uvicorn on a real port.

    .venv/bin/python scripts/fuzz_api.py                        # 1,000 examples per route and mode, in-process
    .venv/bin/python scripts/fuzz_api.py --max-examples 5000 --live
    .venv/bin/python scripts/fuzz_api.py -k predict             # only the predict routes (a pytest -k expression)

Exits non-zero when any response is a 5xx (other than the documented 503 with no model) or does not conform to
the OpenAPI schema; the failing example is printed with a curl command that reproduces it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=1000, help="examples per route and mode (default 1000)")
    parser.add_argument("--live", action="store_true", help="serve the app with uvicorn on 127.0.0.1 and fuzz it")
    parser.add_argument("-k", dest="keyword", help="only the routes matching this pytest -k expression")
    args = parser.parse_args(argv)
    if args.max_examples < 1:
        parser.error("--max-examples must be at least 1")

    os.environ["ELECTION_FUZZ_MAX_EXAMPLES"] = str(args.max_examples)
    os.environ["ELECTION_FUZZ_LIVE"] = "1" if args.live else "0"
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    import pytest

    pytest_args = ["election_api_tests/test_fuzz.py", "-p", "no:cacheprovider", "-q", "--durations=5"]
    if args.keyword:
        pytest_args += ["-k", args.keyword]
    return int(pytest.main(pytest_args))


if __name__ == "__main__":
    sys.exit(main())
