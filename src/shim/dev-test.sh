#!/usr/bin/env bash
# Developer check of the platform shim against a real PostgreSQL server.
#
#   src/shim/dev-test.sh            # PG_BIN defaults to the newest /usr/lib/postgresql/*/bin
#   PG_BIN=/usr/lib/postgresql/17/bin src/shim/dev-test.sh
#
# What it does, on scratch clusters in a temp dir (torn down on any exit):
#   1. checks that the pg_temp helper block is identical in every shim file;
#   2. installs the stub extensions (src/shim/extensions) into the server's
#      extension directory — never over a different file of the same name
#      (a real extension wins) — and removes what it added at the end;
#   3. applies the whole shim to two fresh databases at once (roles race);
#   4. per grant mode (classic, no-expose): a fresh database, the shim applied
#      twice — pg_dump --schema-only --create, pg_dump --data-only and
#      pg_dumpall --roles-only must be identical after both passes — then
#      every tests/shim_sql script of the mode, each sent as ONE batch like
#      the Rust harness does; the dumps must be unchanged after the tests;
#   5. switches an existing database classic -> no-expose and back and
#      compares with the fresh database of the target mode;
#   6. simulates a supabase/postgres image (supabase_admin bootstrap
#      superuser, demoted postgres, 2020 auth.users layout with a user in it)
#      and applies the shim there as postgres (non-superuser) and as
#      supabase_admin, twice each, then runs the classic tests as
#      supabase_admin.
# Exit status 0 iff everything passed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
sql_dir=$here/sql
ext_src=$here/extensions
tests_dir=$root/tests/shim_sql

if [ -z "${PG_BIN:-}" ]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
[ -x "$PG_BIN/initdb" ] || { echo "dev-test: no initdb in PG_BIN=$PG_BIN" >&2; exit 2; }
major=$("$PG_BIN/postgres" --version | awk '{print $3}' | cut -d. -f1)
if [ -x "$PG_BIN/pg_config" ]; then
  ext_dir=$("$PG_BIN/pg_config" --sharedir)/extension
else
  ext_dir=/usr/share/postgresql/$major/extension
fi
[ -d "$ext_dir" ] || { echo "dev-test: no extension directory $ext_dir" >&2; exit 2; }

work=$(mktemp -d)
chmod 755 "$work"
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$work"
  as_pg=(runuser -u postgres --)
fi
installed=()
restore=()
clusters=()

cleanup() {
  local rc=$?
  set +e
  for c in "${clusters[@]}"; do
    "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$c" -m immediate stop >/dev/null 2>&1
  done
  for f in "${installed[@]}"; do rm -f "$f"; done
  for r in "${restore[@]}"; do cp -p "${r%%=*}" "${r#*=}"; done
  rm -rf "$work"
  if [ $rc = 0 ]; then echo "dev-test: PASS (PostgreSQL $major)"; else echo "dev-test: FAIL (PostgreSQL $major)" >&2; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "dev-test: $*" >&2; exit 1; }
step() { echo "== $*"; }

# ------------------------------------------------------------------ 1. helpers
step "helper blocks identical"
ref=""
for f in "$sql_dir"/*.sql; do
  block=$(awk '/^-- >>> dbci helpers/,/^-- <<< dbci helpers/' "$f")
  [ -z "$block" ] && continue
  if [ -z "$ref" ]; then ref=$block; refname=$f
  elif [ "$block" != "$ref" ]; then fail "helper block of $(basename "$f") differs from $(basename "$refname")"; fi
done

# ------------------------------------------------------------------ 2. extensions
step "stub extensions -> $ext_dir"
for f in "$ext_src"/*.control "$ext_src"/*.sql; do
  dest=$ext_dir/$(basename "$f")
  if [ -e "$dest" ] && ! cmp -s "$f" "$dest"; then
    if [ "$(basename "$f")" = pg_cron.control ]; then
      # the stub replaces a real pg_cron (unusable in throwaway databases);
      # the real control file is put back on exit
      cp -p "$dest" "$work/pg_cron.control.real"
      restore+=("$work/pg_cron.control.real=$dest")
      cp "$f" "$dest"
      echo "   pg_cron.control: stub in place of the real one until exit"
    else
      echo "   keeping the server's own $(basename "$f") (a real extension wins)"
    fi
    continue
  fi
  [ -e "$dest" ] && continue
  cp "$f" "$dest"
  installed+=("$dest")
done

# ------------------------------------------------------------------ cluster helpers
port=5432   # unix socket in a private directory, so any port is free
start_cluster() { # name superuser -> sets $sock
  local name=$1 su=$2
  local dir=$work/$name
  "${as_pg[@]}" mkdir -p "$dir/sock"
  "${as_pg[@]}" "$PG_BIN/initdb" -D "$dir/data" -U "$su" -A trust --no-sync >"$work/$name.initdb.log" 2>&1 \
    || { cat "$work/$name.initdb.log"; fail "initdb $name"; }
  clusters+=("$dir/data")
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c fsync=off -c full_page_writes=off -c listen_addresses='' -k $dir/sock -p $port" start >/dev/null \
    || { cat "$dir/server.log"; fail "start $name"; }
  sock=$dir/sock
}

q() { # user db sql...   (one simple-query batch per -c)
  local user=$1 db=$2; shift 2
  "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$sock" -p $port -U "$user" -d "$db" "$@"
}

batch() { # user db file  — the file as ONE simple-query batch, stderr kept
  local user=$1 db=$2 file=$3 log
  log=$work/last.log
  if ! "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p $port -U "$user" -d "$db" \
        -c "$(cat "$file")" >/dev/null 2>"$log"; then
    cat "$log" >&2
    fail "$(basename "$file") failed in $db as $user"
  fi
  cat "$log" >>"$work/all-warnings.log"
}

shim_files() { # mode
  local f
  for f in $(ls "$sql_dir"/*.sql | LC_ALL=C sort); do
    case $(basename "$f") in
      *.classic.*)   [ "$1" = classic ]   || continue ;;
      *.no-expose.*) [ "$1" = no-expose ] || continue ;;
    esac
    echo "$f"
  done
}

test_files() { # mode
  local f
  for f in $(ls "$tests_dir"/*.sql | LC_ALL=C sort); do
    case $(basename "$f") in
      *.classic.*)   [ "$1" = classic ]   || continue ;;
      *.no-expose.*) [ "$1" = no-expose ] || continue ;;
    esac
    echo "$f"
  done
}

apply_shim() { # user db mode [strict]
  local user=$1 db=$2 mode=$3 strict=${4:-}
  : >"$work/shim-warnings.log"
  for f in $(shim_files "$mode"); do
    batch "$user" "$db" "$f"
    cat "$work/last.log" >>"$work/shim-warnings.log"
  done
  if [ -n "$strict" ]; then
    # on a plain server the shim must not warn about anything but wal_level
    if grep '^WARNING' "$work/shim-warnings.log" | grep -qv 'wal_level"\? is insufficient'; then
      cat "$work/shim-warnings.log" >&2
      fail "the shim warned in $db"
    fi
  fi
}

run_tests() { # user db mode
  local n=0
  for f in $(test_files "$3"); do
    batch "$1" "$2" "$f"
    n=$((n + 1))
  done
  echo "   $n test scripts passed in $2 ($3)"
}

snapshot() { # user db out-prefix [dbname-normalisation]
  local user=$1 db=$2 out=$3
  "$PG_BIN/pg_dump" -h "$sock" -p $port -U "$user" --schema-only --create "$db" \
    | sed -e "s/\b$db\b/DBNAME/g" -e '/^-- Dumped \(from\|by\)/d' -e '/^\\\(un\)\?restrict /d' >"$out.schema.sql"
  "$PG_BIN/pg_dump" -h "$sock" -p $port -U "$user" --data-only "$db" \
    | sed -e '/^-- Dumped \(from\|by\)/d' -e '/^\\\(un\)\?restrict /d' >"$out.data.sql"
  "$PG_BIN/pg_dumpall" -h "$sock" -p $port -U "$user" --roles-only \
    | sed -e '/^-- Dumped \(from\|by\)/d' -e '/^\\\(un\)\?restrict /d' >"$out.roles.sql"
}

same() { # prefix-a prefix-b what [ignore-sequence-values] [kinds]
  local k ignore='^$'
  [ -n "${4:-}" ] && ignore='^SELECT pg_catalog.setval('  # nextval() is not rolled back
  for k in ${5:-schema data roles}; do
    if ! diff -u <(grep -v "$ignore" "$1.$k.sql") <(grep -v "$ignore" "$2.$k.sql") >"$work/diff.txt"; then
      head -n 60 "$work/diff.txt" >&2
      fail "$3: $k dump differs"
    fi
  done
}

# ------------------------------------------------------------------ 3. race
step "cluster A (superuser postgres): shim on two fresh databases at once"
start_cluster a postgres
q postgres postgres -c "CREATE DATABASE race_a" -c "CREATE DATABASE race_b"
pids=()
for db in race_a race_b; do
  ( for f in $(shim_files classic); do
      "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p $port -U postgres -d "$db" \
        -c "$(cat "$f")" >/dev/null 2>"$work/race-$db.log" || { cat "$work/race-$db.log"; exit 1; }
    done ) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "concurrent shim application failed"; done

# ------------------------------------------------------------------ 4. both modes
for mode in classic no-expose; do
  db=shim_${mode//-/_}
  step "mode $mode: database $db, shim applied twice"
  q postgres postgres -c "CREATE DATABASE $db"
  apply_shim postgres "$db" "$mode" strict
  snapshot postgres "$db" "$work/$db.1"
  apply_shim postgres "$db" "$mode" strict
  snapshot postgres "$db" "$work/$db.2"
  same "$work/$db.1" "$work/$db.2" "idempotence of the shim ($mode)"
  echo "   idempotent: schema, data and roles dumps identical after pass 1 and pass 2"
  run_tests postgres "$db" "$mode"
  snapshot postgres "$db" "$work/$db.3"
  same "$work/$db.2" "$work/$db.3" "tests must leave no trace ($mode)" ignore-sequence-values
done

# ------------------------------------------------------------------ 5. mode switches
step "switching modes on an existing database"
q postgres postgres -c "CREATE DATABASE switch_to_no_expose" -c "CREATE DATABASE switch_to_classic"
apply_shim postgres switch_to_no_expose classic strict
apply_shim postgres switch_to_no_expose no-expose strict
snapshot postgres switch_to_no_expose "$work/switch_to_no_expose"
# (data differs across databases only by the timestamps of supabase_functions.migrations)
same "$work/shim_no_expose.2" "$work/switch_to_no_expose" "classic -> no-expose" "" "schema roles"
apply_shim postgres switch_to_classic no-expose strict
apply_shim postgres switch_to_classic classic strict
snapshot postgres switch_to_classic "$work/switch_to_classic"
same "$work/shim_classic.2" "$work/switch_to_classic" "no-expose -> classic" "" "schema roles"
run_tests postgres switch_to_classic classic
echo "   both directions give the fresh database of the target mode"

# ------------------------------------------------------------------ 6. supabase/postgres image
step "cluster B: supabase/postgres-like image (bootstrap superuser supabase_admin)"
start_cluster b supabase_admin
q supabase_admin postgres <<'SQL'
-- roughly what the image's init scripts leave (roles)
CREATE ROLE postgres LOGIN NOSUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS;
CREATE ROLE anon NOLOGIN NOINHERIT;
CREATE ROLE authenticated NOLOGIN NOINHERIT;
CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
CREATE ROLE authenticator LOGIN NOINHERIT;
GRANT anon, authenticated, service_role TO authenticator;
GRANT anon, authenticated, service_role TO postgres;
CREATE ROLE supabase_auth_admin LOGIN NOINHERIT CREATEROLE;
CREATE ROLE supabase_storage_admin LOGIN NOINHERIT CREATEROLE;
CREATE ROLE dashboard_user NOLOGIN CREATEDB CREATEROLE REPLICATION;
CREATE ROLE pgbouncer LOGIN;
ALTER ROLE anon SET statement_timeout = '3s';
ALTER ROLE authenticated SET statement_timeout = '8s';
SQL
image_db() { # name: a database the way the image's init scripts leave one
  q supabase_admin postgres -c "CREATE DATABASE $1 OWNER postgres"
  q supabase_admin "$1" >/dev/null <<'SQL'
SET client_min_messages = error;
CREATE SCHEMA extensions;
CREATE EXTENSION "uuid-ossp" WITH SCHEMA extensions;
CREATE EXTENSION pgcrypto WITH SCHEMA extensions;
GRANT USAGE ON SCHEMA extensions TO postgres, anon, authenticated, service_role;
CREATE PUBLICATION supabase_realtime;
CREATE SCHEMA auth AUTHORIZATION supabase_admin;
CREATE TABLE auth.users (
  instance_id uuid, id uuid NOT NULL UNIQUE, aud varchar(255), "role" varchar(255),
  email varchar(255) UNIQUE, encrypted_password varchar(255), confirmed_at timestamptz,
  invited_at timestamptz, confirmation_token varchar(255), confirmation_sent_at timestamptz,
  recovery_token varchar(255), recovery_sent_at timestamptz, email_change_token varchar(255),
  email_change varchar(255), email_change_sent_at timestamptz, last_sign_in_at timestamptz,
  raw_app_meta_data jsonb, raw_user_meta_data jsonb, is_super_admin bool,
  created_at timestamptz, updated_at timestamptz,
  CONSTRAINT users_pkey PRIMARY KEY (id));
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE
  AS $$ select nullif(current_setting('request.jwt.claim.sub', true), '')::uuid $$;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
ALTER TABLE auth.users OWNER TO supabase_auth_admin;
ALTER FUNCTION auth.uid() OWNER TO supabase_auth_admin;
GRANT ALL ON SCHEMA auth TO postgres;
GRANT ALL ON auth.users TO postgres;
CREATE SCHEMA storage AUTHORIZATION supabase_admin;
GRANT USAGE ON SCHEMA storage TO postgres, anon, authenticated, service_role;
INSERT INTO auth.users (id, email, confirmed_at, email_change_token)
VALUES ('11111111-1111-4111-8111-111111111111', 'kept@example.com', '2021-01-01', 'tok');
SQL
}
kept_user_check() { # user db
  [ "$(q "$1" "$2" -c "SELECT email || '|' || email_confirmed_at::date || '|' || email_change_token_new FROM auth.users WHERE id = '11111111-1111-4111-8111-111111111111'")" \
    = "kept@example.com|2021-01-01|tok" ] || fail "$2: the pre-existing auth.users row was not kept intact"
}

step "image: shim as postgres (not a superuser), twice"
image_db image_as_postgres
apply_shim postgres image_as_postgres classic
echo "   $(grep -c '^WARNING' "$work/shim-warnings.log" || true) warnings (expected: what postgres may not change)"
[ -n "${VERBOSE:-}" ] && grep "^WARNING" "$work/shim-warnings.log" | sort | uniq -c
snapshot supabase_admin image_as_postgres "$work/image_as_postgres.1"
apply_shim postgres image_as_postgres classic
snapshot supabase_admin image_as_postgres "$work/image_as_postgres.2"
same "$work/image_as_postgres.1" "$work/image_as_postgres.2" "idempotence on the image as postgres"
[ "$(q supabase_admin image_as_postgres -c "SELECT count(*) FROM auth.users")" = 1 ] || fail "image: user lost"
echo "   idempotent; pre-existing objects kept"

step "image: shim as supabase_admin, twice, then the classic tests"
image_db image_as_admin
apply_shim supabase_admin image_as_admin classic
snapshot supabase_admin image_as_admin "$work/image_as_admin.1"
apply_shim supabase_admin image_as_admin classic
snapshot supabase_admin image_as_admin "$work/image_as_admin.2"
same "$work/image_as_admin.1" "$work/image_as_admin.2" "idempotence on the image as supabase_admin"
kept_user_check supabase_admin image_as_admin
echo "   idempotent; legacy auth.users upgraded in place, its row kept"
run_tests supabase_admin image_as_admin classic
