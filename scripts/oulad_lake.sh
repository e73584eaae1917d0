#!/usr/bin/env bash
# OULAD through a lake (issue 11): an OULAD project, OULAD landed as it is (`land --all`),
# promoted to curated, then `evaluate at-risk` read from the lake beside the `--data` path;
# each step's wall time and peak memory from GNU time.
# Usage: scripts/oulad_lake.sh [OULAD_DIR] [PRESENTATION] (defaults ../shared/data/oulad, all);
# with a presentation (2014J) only its activity partitions are landed (the other CSVs whole).
# MEDALLION=path/to/binary; the project goes to $LAKE (default a new temporary folder).
set -euo pipefail
data=$(cd "${1:-../shared/data/oulad}" && pwd)
only=${2:-}
bin=${MEDALLION:-medallion}
lake=${LAKE:-$(mktemp -d)/oulad-lake}
run() {
  echo "== medallion $*"
  /usr/bin/time -f "   wall %e s, peak RSS %M KB" "$bin" "$@"
}
# A folder of links: the CSVs without studentVle*.csv (the parquet partitions hold the whole
# studentVle table, and the CSV repeats one of them, as `evaluate --data` reads it) and the
# partitions, all or one presentation's.
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
mkdir -p "$src/csv"
for f in "$data"/csv/*.csv; do
  case $(basename "$f") in studentVle*) ;; *) ln -s "$f" "$src/csv/" ;; esac
done
pick=()
# Unquoted on purpose: "*" (every presentation) must glob.
for p in "$data"/parquet/studentVle/code_module=*/code_presentation=${only:-*}; do
  rel=${p#"$data"/}
  mkdir -p "$src/$rel"
  ln -s "$p"/*.parquet "$src/$rel/"
done
if [ -n "$only" ]; then
  pick=(--presentation "$only")
fi
"$bin" init --template oulad "$lake" >/dev/null
cd "$lake"
run land --all "$src" >/dev/null
run -q promote --all --to curated >/dev/null
run evaluate at-risk --as-of-day 56 "${pick[@]}"
run evaluate at-risk --as-of-day 56 "${pick[@]}" --data "$data"
echo "lake: $lake"
