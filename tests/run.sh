#!/usr/bin/env bash
# The whole test run: what the README gives as the test command and what CI runs.
# It installs what the tests need (Python packages with pip, Debian packages with
# apt-get when run as root), then runs ruff, mypy (strict) and pytest in parallel.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install -q --disable-pip-version-check -e '.[test]'

# Real services the tests start themselves: ZooKeeper (Debian's package; needs Java).
if [ ! -e /usr/share/java/zookeeper.jar ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "ZooKeeper is not installed: run 'apt-get install zookeeper' as root" >&2; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends zookeeper >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends zookeeper >/dev/null; }
fi

echo "== ruff" && python3 -m ruff check .
echo "== mypy" && python3 -m mypy
echo "== pytest" && python3 -m pytest -n "${MESOBATCH_TEST_WORKERS:-2}" "$@"
