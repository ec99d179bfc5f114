#!/usr/bin/env bash
# Give this machine a local PostgreSQL 15 with pgvector 0.8.0, pgTAP and the platform's
# extensions Debian packages for 15 (when the archive has them), for db-ci's `local` backend,
# from Debian's packages alone.
#
# Idempotent: when everything is already there it only checks and prints (well under 1 s).
# Needs root (or passwordless sudo) only when something is missing.
#
# What it does when needed:
#   - apt-get update, once per machine (stamp file), only if a package must be installed;
#   - PostgreSQL 15 server binaries (normally already present on these machines);
#   - postgresql-server-dev-15, then pgvector built from Debian 13 (trixie)'s SOURCE package
#     with isolated apt options (the machine's own sources are never touched: mixing
#     Debian 13 binaries into Debian 12 would break it); skipped when vector.control exists;
#   - postgresql-15-pgtap, and the platform's extensions Debian packages for 15 (pg_cron,
#     hypopg, plpgsql_check, pg_partman, pgaudit, rum, pg_repack, wal2json, PostGIS,
#     pgRouting; docs/extensions.md) where the archive has them;
#   - the `postgres` OS user; `initdb`/`pg_ctl` findable on PATH.
set -euo pipefail

PG_MAJOR=15
PG_BINDIR=/usr/lib/postgresql/$PG_MAJOR/bin
PG_SHAREDIR=/usr/share/postgresql/$PG_MAJOR
VECTOR_CONTROL=$PG_SHAREDIR/extension/vector.control
PGTAP_CONTROL=$PG_SHAREDIR/extension/pgtap.control
APT_STAMP=/var/lib/db-ci/apt-updated

t0=$(date +%s.%N)
log() { printf '[install-local-postgres] %s\n' "$*"; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  fi
fi
need_root() {
  if [ "$(id -u)" -ne 0 ] && [ ${#SUDO[@]} -eq 0 ]; then
    log "ERROR: $1 is needed, but this is not root and passwordless sudo is unavailable" >&2
    exit 1
  fi
}
export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-o DPkg::Lock::Timeout=300 -o APT::Install-Recommends=false -y -qq)

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
pkg_available() {
  local c
  c=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/{print $2; exit}')
  [ -n "$c" ] && [ "$c" != "(none)" ]
}

apt_updated=0
apt_update_once() {
  [ "$apt_updated" = 1 ] && return 0
  need_root "apt-get update"
  if [ -f "$APT_STAMP" ]; then apt_updated=1; return 0; fi
  local t; t=$(date +%s.%N)
  log "apt-get update (once per machine)"
  "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq
  "${SUDO[@]}" mkdir -p "$(dirname "$APT_STAMP")"
  "${SUDO[@]}" touch "$APT_STAMP"
  apt_updated=1
  log "apt-get update took $(since "$t") s"
}

apt_install() {
  need_root "apt-get install $*"
  apt_update_once
  local t; t=$(date +%s.%N)
  if ! "${SUDO[@]}" apt-get "${APT_OPTS[@]}" install "$@" >/dev/null; then
    # An old stamp with stale lists: refresh once and retry.
    log "apt-get install $* failed; refreshing lists and retrying"
    "${SUDO[@]}" rm -f "$APT_STAMP"; apt_updated=0; apt_update_once
    "${SUDO[@]}" apt-get "${APT_OPTS[@]}" install "$@" >/dev/null
  fi
  log "installed $* ($(since "$t") s)"
}

did=()

# --- 1. PostgreSQL 15 server binaries -------------------------------------------------
if [ ! -x "$PG_BINDIR/postgres" ] || [ ! -x "$PG_BINDIR/initdb" ]; then
  # Installing postgresql-15 would create and start a "main" cluster on port 5432; db-ci
  # does not want one, so stop postgresql-common from creating it.
  need_root "postgresql-$PG_MAJOR"
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    "${SUDO[@]}" mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | "${SUDO[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
  fi
  apt_install "postgresql-$PG_MAJOR"
  did+=("installed postgresql-$PG_MAJOR")
fi

# --- 2. the postgres OS user ---------------------------------------------------------
if ! id -u postgres >/dev/null 2>&1; then
  need_root "the postgres user"
  "${SUDO[@]}" useradd --system --user-group --home-dir /var/lib/postgresql \
    --shell /bin/bash postgres
  did+=("created OS user postgres")
fi

# --- 3. pgvector 0.8.0 from Debian 13's source package --------------------------------
if [ ! -f "$VECTOR_CONTROL" ]; then
  need_root "pgvector"
  tb=$(date +%s.%N)
  if ! pkg_installed "postgresql-server-dev-$PG_MAJOR"; then
    apt_install "postgresql-server-dev-$PG_MAJOR"
  fi
  command -v make >/dev/null 2>&1 && command -v gcc >/dev/null 2>&1 || apt_install make gcc
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  d=$(mktemp -d /tmp/db-ci-pgvector.XXXXXX)
  trap 'rm -rf "$d"' EXIT
  mkdir -p "$d/lists/partial"
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" \
    > "$d/sources.list"
  o=(-o "Dir::Etc::SourceList=$d/sources.list" -o "Dir::Etc::SourceParts=$d/none"
     -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" -o APT::Sandbox::User=root)
  mkdir -p "$d/cache/archives/partial"
  ts=$(date +%s.%N)
  apt-get "${o[@]}" update -qq
  (cd "$d" && apt-get "${o[@]}" source --download-only -qq pgvector)
  log "fetched $(basename "$d"/pgvector_*.dsc) from trixie's source archive ($(since "$ts") s)"
  ts=$(date +%s.%N)
  tar -C "$d" -xzf "$d"/pgvector_*.orig.tar.gz
  src=$(echo "$d"/pgvector-*/)
  make -s -C "$src" PG_CONFIG="$PG_BINDIR/pg_config" OPTFLAGS="" -j"$(nproc)" >/dev/null
  "${SUDO[@]}" make -s -C "$src" PG_CONFIG="$PG_BINDIR/pg_config" install >/dev/null
  log "compiled and installed pgvector ($(since "$ts") s)"
  v=$(awk -F"'" '/default_version/{print $2}' "$VECTOR_CONTROL")
  rm -rf "$d"; trap - EXIT
  did+=("built+installed pgvector $v from trixie source in $(since "$tb") s")
fi

# --- 4. pgTAP (required) and the platform's extensions Debian has for 15 ---------------
# Supabase offers these; Debian packages the real ones (docs/extensions.md lists the rest,
# emulated or missing). PostGIS and pgRouting are the big ones: about 36 MB to download.
PLATFORM_PKGS=(cron hypopg plpgsql-check partman pgaudit rum repack wal2json postgis-3 pgrouting)
want=()
pkg_installed "postgresql-$PG_MAJOR-pgtap" && [ -f "$PGTAP_CONTROL" ] || want+=("postgresql-$PG_MAJOR-pgtap")
missing_platform=()
for p in "${PLATFORM_PKGS[@]}"; do
  pkg_installed "postgresql-$PG_MAJOR-$p" || missing_platform+=("postgresql-$PG_MAJOR-$p")
done
if [ ${#missing_platform[@]} -gt 0 ] && { [ "$(id -u)" -eq 0 ] || [ ${#SUDO[@]} -gt 0 ]; }; then
  apt_update_once
  for p in "${missing_platform[@]}"; do
    if pkg_available "$p"; then want+=("$p")
    else log "$p is not in the archive; skipping it"; fi
  done
fi
# pg_prove, which the RLS benchmark runs to compare db-ci with the same checks in pgTAP.
command -v pg_prove >/dev/null || want+=("libtap-parser-sourcehandler-pgtap-perl")
if [ ${#want[@]} -gt 0 ]; then
  apt_install "${want[@]}"
  did+=("installed ${want[*]}")
fi

# --- 5. initdb / pg_ctl / postgres on PATH --------------------------------------------
for b in initdb pg_ctl postgres; do
  if ! command -v "$b" >/dev/null 2>&1; then
    need_root "a $b link in /usr/local/bin"
    "${SUDO[@]}" ln -sf "$PG_BINDIR/$b" "/usr/local/bin/$b"
    did+=("linked /usr/local/bin/$b")
  fi
done

# --- report ---------------------------------------------------------------------------
[ ${#did[@]} -eq 0 ] && did=("nothing to do: already installed")
for x in "${did[@]}"; do log "$x"; done
log "initdb:   $(command -v initdb) -> $(readlink -f "$(command -v initdb)")"
log "pg_ctl:   $(command -v pg_ctl) -> $(readlink -f "$(command -v pg_ctl)")"
log "server:   $("$PG_BINDIR/postgres" --version)"
log "pgvector: $(awk -F"'" '/default_version/{print $2}' "$VECTOR_CONTROL"); pgtap: $(awk -F"'" '/default_version/{print $2}' "$PGTAP_CONTROL" 2>/dev/null || echo missing)"
have=(); lack=()
for p in "${PLATFORM_PKGS[@]}"; do
  if pkg_installed "postgresql-$PG_MAJOR-$p"; then have+=("$p"); else lack+=("$p"); fi
done
log "platform extensions: ${have[*]:-none}${lack:+; not installed: ${lack[*]}}"
log "done in $(since "$t0") s"
