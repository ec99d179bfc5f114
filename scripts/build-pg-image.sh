#!/usr/bin/env bash
# Build db-ci/pgvector:pg17 — PostgreSQL 17 + pgvector + pgTAP + the platform's extensions
# Debian packages for 17 (pg_cron, hypopg, plpgsql_check, pg_partman, pgaudit, rum, pg_repack,
# wal2json, PostGIS, pgRouting; docs/extensions.md) on Debian 13 —
# from Debian's packages alone, for machines whose Docker engine reaches no registry.
# (debootstrap of Debian 13 into a folder, PostgreSQL from Debian's archive, imported with
# `docker import`: no base image is pulled). The image honours the official `postgres` image's
# contract (scripts/image/docker-entrypoint.sh), so the harness treats it like
# pgvector/pgvector:pg17.
#
# Idempotent: exits at once when the image exists. Otherwise (about 2 minutes):
# debootstrap a minimal trixie root with the packages, add the entrypoint, trim it,
# `docker import` it, remove the root.
#
# Env: DB_CI_IMAGE (default db-ci/pgvector:pg17), DB_CI_REBUILD_IMAGE=1 to rebuild anyway.
set -euo pipefail

IMAGE=${DB_CI_IMAGE:-db-ci/pgvector:pg17}
PG_MAJOR=17
SUITE=trixie
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ENTRYPOINT_SRC=$here/image/docker-entrypoint.sh
[ -r "$ENTRYPOINT_SRC" ] || { echo "[build-pg-image] ERROR: $ENTRYPOINT_SRC missing" >&2; exit 1; }

t0=$(date +%s.%N)
log() { printf '[build-pg-image] %s\n' "$*"; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

# The image carries a hash of this script and the entrypoint: when either changes, rebuild.
recipe=$(cat "${BASH_SOURCE[0]}" "$ENTRYPOINT_SRC" | sha256sum | cut -c1-16)
image_current() {
  local have
  have=$(docker image inspect -f '{{index .Config.Labels "db-ci.recipe"}}' "$IMAGE" 2>/dev/null) || return 1
  if [ "$have" = "$recipe" ]; then return 0; fi
  log "$IMAGE exists but was built from another recipe (${have:-none} != $recipe); rebuilding"
  return 1
}
if [ "${DB_CI_REBUILD_IMAGE:-}" != 1 ] && image_current; then
  log "$IMAGE already present ($(docker image inspect -f '{{.Id}}' "$IMAGE" | cut -c1-19), recipe $recipe); nothing to do"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  log "ERROR: building $IMAGE needs root (debootstrap); run as root" >&2
  exit 1
fi
docker info >/dev/null 2>&1 || { log "ERROR: no usable Docker engine (docker info failed)" >&2; exit 1; }

# One build at a time on a machine; a second caller waits, then finds the image.
exec 9>/var/lock/db-ci-build-pg-image.lock
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
  if [ "${DB_CI_REBUILD_IMAGE:-}" != 1 ] && image_current; then
    log "$IMAGE was built meanwhile; nothing to do"
    exit 0
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# --- debootstrap itself ---------------------------------------------------------------
if ! command -v debootstrap >/dev/null 2>&1; then
  t=$(date +%s.%N)
  APT=(apt-get -o DPkg::Lock::Timeout=300 -o APT::Install-Recommends=false -y -qq)
  if ! "${APT[@]}" install debootstrap >/dev/null; then
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    "${APT[@]}" install debootstrap >/dev/null
  fi
  log "installed debootstrap ($(since "$t") s)"
fi

mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
[ -n "$mirror" ] || { log "ERROR: no URIs: line in /etc/apt/sources.list.d/debian.sources" >&2; exit 1; }

root=$(mktemp -d /var/tmp/db-ci-pgroot.XXXXXX)
cleanup() {
  local rc=$?
  [ -n "${root:-}" ] && [ -d "$root" ] || return 0
  # Stray processes started inside the root (e.g. by a maintainer script): end them.
  local p
  for p in /proc/[0-9]*; do
    if [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ]; then
      log "ending stray process ${p#/proc/} running inside the build root"
      kill "${p#/proc/}" 2>/dev/null || :
    fi
  done
  # debootstrap mounts /proc, /sys and sometimes binds /dev in the root; unmount before
  # deleting anything, deepest first, and never delete across file systems.
  local m
  for m in $(awk -v r="$root" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" || :
  done
  if awk -v r="$root" '$2 == r || index($2, r "/") == 1 {f=1} END{exit !f}' /proc/mounts; then
    log "WARNING: mounts remain under $root; NOT deleting it" >&2
  else
    rm -rf --one-file-system "$root"
  fi
  return $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. debootstrap ---------------------------------------------------------------------
base_pkgs=postgresql-$PG_MAJOR,postgresql-$PG_MAJOR-pgvector,postgresql-$PG_MAJOR-pgtap,locales
# The platform's extensions Debian packages for 17 (docs/extensions.md lists the rest).
# postgresql-17-http is left out on purpose: db-ci's http emulation must win, so that no test
# reaches the network (dbdev's bootstrap asks api.database.dev). PostGIS and pgRouting bring
# GDAL, PROJ and GEOS: the larger part of the image, measured in the timings printed below.
optional_pkgs=$(printf "postgresql-$PG_MAJOR-%s," cron hypopg plpgsql-check partman pgaudit rum \
  repack wal2json postgis-3 pgrouting)
optional_pkgs=${optional_pkgs%,}
t=$(date +%s.%N)
dlog=$(mktemp /tmp/db-ci-debootstrap.XXXXXX.log)
if debootstrap --variant=minbase --include="$base_pkgs,$optional_pkgs" \
     "$SUITE" "$root" "$mirror" >"$dlog" 2>&1; then
  included="$base_pkgs,$optional_pkgs"
elif grep -q "Couldn't find these debs" "$dlog"; then
  log "optional $optional_pkgs did not resolve; bootstrapping without it"
  cleanup; root=$(mktemp -d /var/tmp/db-ci-pgroot.XXXXXX)
  debootstrap --variant=minbase --include="$base_pkgs" "$SUITE" "$root" "$mirror" >"$dlog" 2>&1 \
    || { tail -30 "$dlog" >&2; rm -f "$dlog"; exit 1; }
  included=$base_pkgs
else
  tail -30 "$dlog" >&2; rm -f "$dlog"; exit 1
fi
rm -f "$dlog"
t_debootstrap=$(since "$t")
log "debootstrap --variant=minbase $SUITE with ${included//,/ }: ${t_debootstrap} s, $(du -sm --one-file-system "$root" | cut -f1) MB"

# --- 2. customise and trim --------------------------------------------------------------
t=$(date +%s.%N)
# Ends anything a maintainer script may have started and unmounts /proc etc. (no-op if none).
for p in /proc/[0-9]*; do
  if [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ]; then
    log "ending stray process ${p#/proc/} ($(tr '\0' ' ' < "$p/cmdline" 2>/dev/null | cut -c1-60))"
    kill "${p#/proc/}" 2>/dev/null || :
  fi
done
for m in $(awk -v r="$root" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r); do
  umount "$m" 2>/dev/null || umount -l "$m"
done

pg_version=$(chroot "$root" dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR")
vector_version=$(chroot "$root" dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR-pgvector")
pgtap_version=$(chroot "$root" dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR-pgtap")

# The cluster postgresql-common made for itself is not used: the entrypoint initdb's PGDATA.
rm -rf "$root/var/lib/postgresql/$PG_MAJOR" "$root/etc/postgresql/$PG_MAJOR"
mkdir -p "$root/etc/postgresql-common"
echo "create_main_cluster = false" >> "$root/etc/postgresql-common/createcluster.conf"

# en_US.UTF-8, as the official image has (LANG=en_US.utf8).
lang=C.UTF-8
if chroot "$root" localedef -i en_US -c -f UTF-8 -A /usr/share/locale/locale.alias en_US.UTF-8 2>/dev/null; then
  lang=en_US.utf8
fi

# listen on all addresses by default, as the official image does.
sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" \
  "$root/usr/share/postgresql/$PG_MAJOR/postgresql.conf.sample"
# pgaudit can only be created when preloaded (the platform preloads it); with pgaudit.log
# at its default 'none' it logs nothing.
if [ -f "$root/usr/lib/postgresql/$PG_MAJOR/lib/pgaudit.so" ]; then
  sed -ri "s!^#?(shared_preload_libraries)\s*=\s*'[^']*'!\1 = 'pgaudit'!" \
    "$root/usr/share/postgresql/$PG_MAJOR/postgresql.conf.sample"
fi

install -m 0755 "$ENTRYPOINT_SRC" "$root/usr/local/bin/docker-entrypoint.sh"
mkdir -p "$root/docker-entrypoint-initdb.d"
chroot "$root" install -d -o postgres -g postgres -m 3775 /var/run/postgresql
chroot "$root" install -d -o postgres -g postgres -m 1777 /var/lib/postgresql/data
# An initialised cluster the entrypoint copies instead of running initdb (its
# initialised_fits says when): what the entrypoint's initdb would write, minus the password.
chmod 0755 "$root"  # mktemp made it 0700: the image's / must let postgres through
chroot --userspec=postgres:postgres "$root" /usr/bin/env -i LANG="$lang" \
  PATH="/usr/lib/postgresql/$PG_MAJOR/bin:/usr/bin:/bin" \
  initdb --username=postgres --no-sync -D /var/lib/postgresql/initialised >/dev/null
# initdb found no /dev/shm in the root; a container has one, as its own initdb would see.
sed -ri 's/^(dynamic_shared_memory_type) = sysv/\1 = posix/' \
  "$root/var/lib/postgresql/initialised/postgresql.conf"
for tool in setpriv runuser; do
  [ -x "$root/usr/bin/$tool" ] || [ -x "$root/bin/$tool" ] || [ -x "$root/usr/sbin/$tool" ] \
    || log "note: $tool not in the root"
done

# Trim: docs, man pages, message translations, locale sources (after localedef), apt's
# downloaded packages and lists. Nothing the server, psql, initdb or the extensions read.
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
  "$root"/usr/share/lintian "$root"/usr/share/linda "$root/usr/share/postgresql/$PG_MAJOR/man" \
  "$root"/usr/share/locale/* "$root"/usr/share/i18n/charmaps/* "$root"/usr/share/i18n/locales/* \
  "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
  "$root"/var/cache/debconf/*-old "$root"/var/log/*.log "$root"/var/log/apt/* \
  "$root"/tmp/* "$root"/var/tmp/* 2>/dev/null || :
# keep locale.alias (localedef users may want it)
t_custom=$(since "$t")
size_mb=$(du -sm --one-file-system "$root" | cut -f1)
log "customised and trimmed: ${t_custom} s, ${size_mb} MB"

# --- 3. docker import -------------------------------------------------------------------
t=$(date +%s.%N)
old_id=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || :)
tar --numeric-owner --one-file-system -C "$root" -c . | docker import \
  --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
  --change 'CMD ["postgres"]' \
  --change 'EXPOSE 5432' \
  --change "ENV PATH=/usr/lib/postgresql/$PG_MAJOR/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change 'ENV PGDATA=/var/lib/postgresql/data' \
  --change "ENV LANG=$lang" \
  --change "ENV PG_MAJOR=$PG_MAJOR" \
  --change "ENV PG_VERSION=$pg_version" \
  --change "LABEL org.opencontainers.image.description=\"PostgreSQL $pg_version + pgvector $vector_version + pgTAP $pgtap_version on Debian $SUITE, built by db-ci scripts/build-pg-image.sh\"" \
  --change "LABEL db-ci.pgvector=$vector_version" \
  --change "LABEL db-ci.recipe=$recipe" \
  --message "db-ci: debootstrap $SUITE ${included//,/ }" \
  - "$IMAGE" >/dev/null
t_import=$(since "$t")
if [ -n "$old_id" ] && [ "$old_id" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]; then
  docker image rm "$old_id" >/dev/null 2>&1 && log "removed the previous $IMAGE (${old_id:7:12})" || :
fi
log "docker import: ${t_import} s"

cleanup; trap - EXIT
img_mb=$(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%d", $1/1048576}')
log "built $IMAGE: PostgreSQL $pg_version, pgvector $vector_version, pgTAP $pgtap_version, LANG=$lang, ${img_mb} MB"
log "timings: debootstrap ${t_debootstrap} s, customise ${t_custom} s, import ${t_import} s, total $(since "$t0") s"
