#!/usr/bin/env bash
# bench/e2e.sh: `./run bench e2e [--full] [--keep]`: ampd end to end, the real
# binary on DPDK ports fed by a packet generator (see bench/README.md).
# The work is done by bench/e2e.py; this wrapper finds the build and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
export AMP_BUILD=${AMP_BUILD:-build}
command -v python3 >/dev/null || { echo "e2e: python3 is needed" >&2; exit 2; }
exec python3 bench/e2e.py "$@"
