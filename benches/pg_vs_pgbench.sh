#!/usr/bin/env bash
# PostgreSQL throughput: dpor's check + submit (benches/clients.rs) against
# `pgbench -b tpcb-like` at the same client counts, on the same throwaway server, in
# the same run; prints both and the ratio (target: dpor at least 1.0x pgbench).
#
#   bash benches/pg_vs_pgbench.sh            # 1, 8 and 16 clients, 10 s each
#   bash benches/pg_vs_pgbench.sh --quick    # 1 and 8 clients, 1 s each (CI: it runs)
#
# Environment: DPOR_BENCH_CLIENTS (e.g. "1,8,16"), DPOR_BENCH_SECONDS. The server is
# the one `.ci/postgres.sh` starts (installing PostgreSQL if needed; fsync off, as in
# the tests), on port DPOR_PG_PORT (default 55432), stopped when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."

clients=${DPOR_BENCH_CLIENTS:-1,8,16}
seconds=${DPOR_BENCH_SECONDS:-10}
if [ "${1:-}" = "--quick" ]; then
  clients=${DPOR_BENCH_CLIENTS:-1,8}
  seconds=${DPOR_BENCH_SECONDS:-1}
fi

cargo bench --quiet --all-features --bench clients --no-run
source .ci/postgres.sh

# pgbench in a database of its own, scaled so that 16 clients do not all queue on
# one branch row (scale 16: 16 branches, 1.6M accounts).
as_pg "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U dpor pgbench
pgbench_url="postgres://dpor@127.0.0.1:$pg_port/pgbench"
"$pg_bin/pgbench" -i -q -s 16 "$pgbench_url" >/dev/null 2>&1

printf '%-8s %12s %12s %8s\n' clients "dpor tps" "pgbench tps" ratio
status=0
for n in ${clients//,/ }; do
  threads=$(( n < 2 ? n : 2 ))
  pgbench_tps=$("$pg_bin/pgbench" -n -b tpcb-like -c "$n" -j "$threads" -T "$seconds" "$pgbench_url" 2>/dev/null \
    | awk '/^tps = / { print $3; exit }')
  dpor_line=$(DPOR_BENCH_CLIENTS=$n DPOR_BENCH_SECONDS=$seconds \
    cargo bench --quiet --all-features --bench clients 2>/dev/null | grep '^clients ')
  dpor_tps=$(awk '{ print $4 }' <<<"$dpor_line")
  ratio=$(awk -v a="$dpor_tps" -v b="$pgbench_tps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  printf '%-8s %12s %12s %7sx   (%s)\n' "$n" "$dpor_tps" "$pgbench_tps" "$ratio" "$dpor_line"
  if [ -z "$dpor_tps" ] || [ -z "$pgbench_tps" ]; then
    status=1
  fi
done
exit "$status"
