#!/usr/bin/env bash
# The whole test run: what the README gives as the test command and what CI runs.
# It installs what the tests need (Python packages with pip, Debian packages with
# apt-get when run as root), then runs ruff, mypy (strict) and pytest in parallel, and
# the suites that need no other service on Python 3.13 too.
set -euo pipefail
cd "$(dirname "$0")/.."

# A plain editable install, as the README's quick start makes (a .pth to the checkout:
# Toil, which finds plugins by scanning sys.path, sees toil_batch_system_mesobatch);
# toil[cwl] for toil-cwl-runner in tests/integration/toil/. From a virtualenv, python3 is
# the virtualenv's.
python3 -m pip install -q --disable-pip-version-check -e '.[test,toil]' 'toil[cwl]'
# Toil's own test package, whose batch-system tests tests/integration/toil/ runs, calls rsync on import.
if ! command -v rsync >/dev/null; then
  if [ "$(id -u)" != 0 ]; then echo "rsync is not installed: run 'apt-get install rsync' as root" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q rsync >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q rsync >/dev/null; }
fi

# Real services the tests start themselves: ZooKeeper (Debian's package; needs Java).
if [ ! -e /usr/share/java/zookeeper.jar ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "ZooKeeper is not installed: run 'apt-get install zookeeper' as root" >&2; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends zookeeper >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends zookeeper >/dev/null; }
fi

# Grid Engine (Debian's Son of Grid Engine 8.1.9); tests/services/gridengine.py starts it.
# The preseed makes the packages create the cell "default" with this host as master.
if [ ! -e /var/lib/gridengine/default/common/bootstrap ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "Grid Engine is not installed: run tests/run.sh as root once" >&2; exit 1
  fi
  for p in gridengine-common gridengine-master gridengine-exec gridengine-client; do
    printf '%s shared/gridengineconfig boolean true\n%s shared/gridenginecell string default\n%s shared/gridenginemaster string %s\n' \
      "$p" "$p" "$p" "$(hostname)"
  done | debconf-set-selections
  ge="gridengine-master gridengine-exec gridengine-client"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends $ge >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $ge >/dev/null; }
fi

# kubectl checks the Kubernetes double's JSON (tests/doubles/kubernetes/tests/test_kubectl.py):
# Debian's kubernetes-client, unless a kubectl is already installed (Google's SDK package ships
# one at /usr/bin/kubectl, which Debian's package would conflict with).
if ! command -v kubectl >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "kubectl is not installed: run 'apt-get install kubernetes-client' as root" >&2; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends kubernetes-client >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null &&
      apt-get install -y -q --no-install-recommends kubernetes-client >/dev/null; }
fi

# A real headless browser for the status page's test (tests/services/browser.py):
# Debian's chromium and its WebDriver, and fonts for its text.
if ! command -v chromedriver >/dev/null || [ ! -x /usr/bin/chromium ] ||
   [ ! -d /usr/share/fonts/truetype/liberation ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "chromium is not installed: run 'apt-get install chromium chromium-driver fonts-liberation' as root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-liberation >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null &&
      apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-liberation >/dev/null; }
fi

# Real Slurm 22.05 (tests/services/slurm.py starts it): controller, node daemon, clients,
# munge, and slurmdbd with MariaDB for sacct. Never slurm-wlm-torque (it conflicts with
# Grid Engine's clients).
SLURM_PKGS="slurmctld slurmd slurm-client munge slurmdbd mariadb-server"
slurm_missing=0
for prog in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch /usr/sbin/munged \
            /usr/sbin/slurmdbd /usr/sbin/mariadbd; do
  [ -x "$prog" ] || slurm_missing=1
done
if [ "$slurm_missing" = 1 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "Slurm is not installed: run 'apt-get install $SLURM_PKGS' as root" >&2; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $SLURM_PKGS >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $SLURM_PKGS >/dev/null; }
fi

echo "== ruff" && python3 -m ruff check .
echo "== mypy" && python3 -m mypy
echo "== pytest" && python3 -m pytest -n "${MESOBATCH_TEST_WORKERS:-2}" --dist loadgroup "$@"

# The newest Python beside the one above, where pyenv has it (as this kind of machine
# does): the suites that need no other backend's service, from a virtualenv of its own.
# Not when arguments chose the tests; MESOBATCH_OTHER_PYTHON=none skips it too.
other="${MESOBATCH_OTHER_PYTHON:-$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13.*/bin/python3 2>/dev/null | sort -V | tail -n 1)}"
if [ $# -gt 0 ] || [ "$other" = none ]; then
  exit 0
elif [ -z "$other" ]; then
  echo "== no other Python here (pyenv's 3.13): its suites not run"
else
  venv="${TMPDIR:-/tmp}/mesobatch-venv-$("$other" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  echo "== pytest on $("$other" --version) ($venv)"
  [ -x "$venv/bin/python" ] || "$other" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
  run_other() {
    "$venv/bin/python" -m pytest -q -n "${MESOBATCH_TEST_WORKERS:-2}" --dist loadgroup \
      -p no:cacheprovider "$@"
  }
  run_other tests/scheduler/core tests/scheduler/status tests/executor tests/deploy \
    tests/common tests/integration/test_emulated.py tests/integration/test_functions.py
  run_other tests/contract -k local
fi
