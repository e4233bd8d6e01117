#!/usr/bin/env bash
# bench/soak.sh: `./run bench soak [--minutes N] [--rate HTLCS_PER_S] [--keep]`:
# ampd under constant load with churn (see bench/soak.py, bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export AMP_BUILD=${AMP_BUILD:-build}
command -v python3 >/dev/null || { echo "soak: python3 is needed" >&2; exit 2; }
exec python3 bench/soak.py "$@"
