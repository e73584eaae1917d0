#!/usr/bin/env bash
# The full-OULAD at-risk benchmark (issue 11): fit the weights on the earlier presentations
# (2013B, 2013J, 2014B), then evaluate on the later one (2014J) on days 28 and 56, and on every
# presentation on day 56; each run's wall time and peak memory from GNU time.
# Usage: scripts/oulad_evaluate.sh [OULAD_DIR] (default ../shared/data/oulad); MEDALLION=path/to/binary.
set -euo pipefail
data=${1:-../shared/data/oulad}
bin=${MEDALLION:-medallion}
run() {
  echo "== medallion $*"
  /usr/bin/time -f "   wall %e s, peak RSS %M KB" "$bin" "$@"
}
run evaluate at-risk --as-of-day 56 --data "$data" --presentation 2013B --presentation 2013J --presentation 2014B --fit
for day in 28 56; do
  run evaluate at-risk --as-of-day "$day" --data "$data" --presentation 2014J
done
run evaluate at-risk --as-of-day 56 --data "$data"
