# Sourced by .ci/run: makes sure PostgreSQL is installed, starts a throwaway cluster on
# 127.0.0.1, exports DPOR_TEST_POSTGRES_URL, and stops the cluster when the shell exits.
# Usable by hand too: `source .ci/postgres.sh` in a shell you then run the tests in.

pg_bin=""
find_pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && pg_bin="$dir"
  done
  [ -n "$pg_bin" ]
}

if ! find_pg_bin; then
  echo "==> installing PostgreSQL from the distribution's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  find_pg_bin || { echo "PostgreSQL install failed" >&2; return 1; }
fi

pg_user=postgres
id "$pg_user" >/dev/null 2>&1 || useradd --system --no-create-home "$pg_user"
pg_data=$(mktemp -d /tmp/dpor-pg.XXXXXX)
chown "$pg_user" "$pg_data"
pg_port=${DPOR_PG_PORT:-55432}
as_pg() { if [ "$(id -un)" = "$pg_user" ]; then "$@"; else runuser -u "$pg_user" -- "$@"; fi; }

echo "==> starting PostgreSQL ($pg_bin) in $pg_data on 127.0.0.1:$pg_port"
as_pg "$pg_bin/initdb" -D "$pg_data/data" -U dpor --auth=trust -E UTF8 >"$pg_data/initdb.log" 2>&1 \
  || { cat "$pg_data/initdb.log" >&2; return 1; }
as_pg "$pg_bin/pg_ctl" -D "$pg_data/data" -l "$pg_data/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $pg_port -c unix_socket_directories=$pg_data -c fsync=off" start >/dev/null \
  || { cat "$pg_data/server.log" >&2; return 1; }
stop_postgres() {
  as_pg "$pg_bin/pg_ctl" -D "$pg_data/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$pg_data"
}
trap stop_postgres EXIT
as_pg "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U dpor dpor
export DPOR_TEST_POSTGRES_URL="postgres://dpor@127.0.0.1:$pg_port/dpor"
echo "==> DPOR_TEST_POSTGRES_URL=$DPOR_TEST_POSTGRES_URL"
