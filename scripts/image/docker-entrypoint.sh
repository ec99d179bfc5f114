#!/usr/bin/env bash
# Entrypoint of db-ci's locally built image db-ci/pgvector:pg17 (scripts/build-pg-image.sh).
#
# Follows the contract of the official `postgres` image (and so `pgvector/pgvector`) as far
# as db-ci needs it, so one harness code path serves both:
#   POSTGRES_PASSWORD / POSTGRES_PASSWORD_FILE, POSTGRES_USER (default postgres),
#   POSTGRES_DB (default = user), POSTGRES_HOST_AUTH_METHOD, POSTGRES_INITDB_ARGS,
#   POSTGRES_INITDB_WALDIR, PGDATA, /docker-entrypoint-initdb.d/*.sh|*.sql[.gz|.xz|.zst],
#   arguments starting with `-` (e.g. `-c fsync=off`) go to `postgres`, and the server's own
#   "database system is ready to accept connections" line marks readiness.
set -Eeo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*"; }
die() { printf '%s [entrypoint] ERROR: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2; exit 1; }

# file_env VAR [DEFAULT]: VAR may instead be given as a file in VAR_FILE (docker secrets).
file_env() {
	local var="$1" fileVar="${1}_FILE" def="${2:-}"
	if [ -n "${!var:-}" ] && [ -n "${!fileVar:-}" ]; then
		die "both $var and $fileVar are set (but are exclusive)"
	fi
	local val="$def"
	if [ -n "${!var:-}" ]; then
		val="${!var}"
	elif [ -n "${!fileVar:-}" ]; then
		val="$(< "${!fileVar}")"
	fi
	export "$var"="$val"
	unset "$fileVar"
}

# `postgres --help`, `--version`, `-C name`, `--describe-config` must not trigger initdb.
want_help() {
	local arg
	for arg; do
		case "$arg" in
			-'?'|--help|--describe-config|-V|--version|-C|--config-file=*) return 0 ;;
		esac
	done
	return 1
}

# Drop privileges to the postgres user, exec-style (postgres becomes PID 1, like gosu).
as_postgres() {
	if command -v setpriv >/dev/null 2>&1; then
		exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
	elif command -v runuser >/dev/null 2>&1; then
		exec runuser -u postgres -- "$@"
	elif command -v gosu >/dev/null 2>&1; then
		exec gosu postgres "$@"
	else
		exec su -s /bin/sh postgres -c "$(printf '%q ' "$@")"
	fi
}

setup_env() {
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER 'postgres'
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	: "${POSTGRES_HOST_AUTH_METHOD:=}"
	: "${PGDATA:=/var/lib/postgresql/data}"
	export PGDATA
	DATABASE_ALREADY_EXISTS=
	if [ -s "$PGDATA/PG_VERSION" ]; then
		DATABASE_ALREADY_EXISTS=true
	fi
}

create_db_directories() {
	local user; user="$(id -u)"
	mkdir -p "$PGDATA"
	chmod 00700 "$PGDATA" || :
	mkdir -p /var/run/postgresql || :
	chmod 03775 /var/run/postgresql || :
	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		mkdir -p "$POSTGRES_INITDB_WALDIR"
		[ "$user" = '0' ] && find "$POSTGRES_INITDB_WALDIR" \! -user postgres -exec chown postgres: '{}' +
		chmod 700 "$POSTGRES_INITDB_WALDIR"
	fi
	if [ "$user" = '0' ]; then
		find "$PGDATA" \! -user postgres -exec chown postgres: '{}' +
		find /var/run/postgresql \! -user postgres -exec chown postgres: '{}' +
	fi
}

verify_minimum_env() {
	if [ "${#POSTGRES_PASSWORD}" -ge 100 ]; then
		log "WARNING: POSTGRES_PASSWORD is 100 characters or more; md5 auth would truncate it"
	fi
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != 'trust' ]; then
		cat >&2 <<-'EOE'
			Error: Database is uninitialized and superuser password is not specified.
			       You must specify POSTGRES_PASSWORD to a non-empty value for the
			       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

			       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
			       connections without a password. This is *not* recommended.
		EOE
		exit 1
	fi
	if [ "$POSTGRES_HOST_AUTH_METHOD" = 'trust' ]; then
		log "WARNING: POSTGRES_HOST_AUTH_METHOD=trust: every host may connect without a password"
	fi
}

init_database_dir() {
	local waldir=()
	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		# shellcheck disable=SC2034  # used inside the eval below
		waldir=(--waldir="$POSTGRES_INITDB_WALDIR")
	fi
	# POSTGRES_INITDB_ARGS is word-split (eval) on purpose, as upstream does.
	if [ -n "$POSTGRES_PASSWORD" ]; then
		eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"' "${waldir[@]}"'
	else
		eval 'initdb --username="$POSTGRES_USER" '"$POSTGRES_INITDB_ARGS"' "${waldir[@]}"'
	fi
}

# A cluster initialised when the image was built (scripts/build-pg-image.sh): copied instead
# of running initdb when the container asks for what it holds (the superuser `postgres`, no
# initdb options beyond --no-sync, no WAL directory). It is the same as what initdb would
# write here, and saves about 2 s of every container's start (db-ci starts one per run).
INITIALISED=/var/lib/postgresql/initialised
initialised_fits() {
	[ -s "$INITIALISED/PG_VERSION" ] && [ "$POSTGRES_USER" = postgres ] \
		&& [ -z "${POSTGRES_INITDB_WALDIR:-}" ] \
		&& { [ -z "$POSTGRES_INITDB_ARGS" ] || [ "$POSTGRES_INITDB_ARGS" = --no-sync ]; }
}

copy_initialised() {
	cp -a "$INITIALISED/." "$PGDATA/"
	if [ -n "$POSTGRES_PASSWORD" ]; then
		# As initdb --pwfile does: the superuser's password, set in single-user mode.
		printf "ALTER ROLE postgres PASSWORD '%s'\n" "${POSTGRES_PASSWORD//\'/\'\'}" \
			| postgres --single -D "$PGDATA" postgres > /dev/null
	fi
	printf 'initdb: the cluster initialised in the image was copied to %s\n' "$PGDATA"
}

setup_conf() {
	if [ "${1:-}" = 'postgres' ]; then shift; fi
	local method="$POSTGRES_HOST_AUTH_METHOD"
	if [ -z "$method" ]; then
		# Same default as upstream: the server's password_encryption (scram-sha-256 on 14+).
		method="$(postgres -C password_encryption "$@" 2>/dev/null || echo scram-sha-256)"
		[ -n "$method" ] || method=scram-sha-256
	fi
	{
		printf '\n'
		if [ "$method" = 'trust' ]; then
			printf '# warning trust is enabled for all connections\n'
		fi
		printf 'host all all all %s\n' "$method"
	} >> "$PGDATA/pg_hba.conf"
	if ! grep -Eq "^[[:space:]]*listen_addresses[[:space:]]*=" "$PGDATA/postgresql.conf"; then
		printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
	fi
}

temp_server_start() {
	if [ "$1" = 'postgres' ]; then shift; fi
	# Socket only (listen_addresses=''), so nothing outside sees a half-initialised server.
	set -- "$@" -c listen_addresses='' -p "${PGPORT:-5432}"
	PGUSER="${PGUSER:-$POSTGRES_USER}" \
	pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@")" -w start
}

temp_server_stop() {
	PGUSER="${PGUSER:-postgres}" pg_ctl -D "$PGDATA" -m fast -w stop
}

psql_init() {
	psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

setup_db() {
	local exists
	exists="$(psql_init --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<-'EOSQL'
		SELECT 1 FROM pg_database WHERE datname = :'db' ;
	EOSQL
	)"
	if [ -z "$exists" ]; then
		psql_init --dbname postgres --set db="$POSTGRES_DB" <<-'EOSQL'
			CREATE DATABASE :"db" ;
		EOSQL
		printf '\n'
	fi
}

process_init_files() {
	local f
	printf '\n'
	for f; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then
					log "running $f"; "$f"
				else
					log "sourcing $f"; # shellcheck disable=SC1090
					. "$f"
				fi ;;
			*.sql)     log "running $f"; psql_init --dbname "$POSTGRES_DB" -f "$f"; printf '\n' ;;
			*.sql.gz)  log "running $f"; gunzip -c "$f" | psql_init --dbname "$POSTGRES_DB"; printf '\n' ;;
			*.sql.xz)  log "running $f"; xzcat "$f" | psql_init --dbname "$POSTGRES_DB"; printf '\n' ;;
			*.sql.zst) log "running $f"; zstd -dc "$f" | psql_init --dbname "$POSTGRES_DB"; printf '\n' ;;
			*)         log "ignoring $f" ;;
		esac
		printf '\n'
	done
}

main() {
	# `docker run IMAGE -c fsync=off` → `postgres -c fsync=off`
	if [ "${1:0:1}" = '-' ]; then
		set -- postgres "$@"
	fi

	if [ "$1" = 'postgres' ] && ! want_help "$@"; then
		setup_env
		create_db_directories
		if [ "$(id -u)" = '0' ]; then
			# Re-run this script as postgres (initdb and postgres refuse to run as root).
			as_postgres "$(readlink -f "${BASH_SOURCE[0]}")" "$@"
		fi

		if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
			verify_minimum_env
			# Let an unreadable init directory fail early, before initdb.
			ls /docker-entrypoint-initdb.d/ > /dev/null 2>&1 || :
			local copied='' init_files
			if initialised_fits; then
				copy_initialised
				copied=1
			else
				init_database_dir
			fi
			setup_conf "$@"

			shopt -s nullglob
			init_files=(/docker-entrypoint-initdb.d/*)
			shopt -u nullglob
			# A copied cluster already has its password and the `postgres` database: a setup
			# server is only started when there is something for it to do.
			if [ -z "$copied" ] || [ "${#init_files[@]}" -gt 0 ] || [ "$POSTGRES_DB" != postgres ]; then
				export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
				temp_server_start "$@"
				setup_db
				process_init_files "${init_files[@]}"
				temp_server_stop
				unset PGPASSWORD
			fi

			printf '\nPostgreSQL init process complete; ready for start up.\n\n'
		else
			printf '\nPostgreSQL Database directory appears to contain a database; Skipping initialization\n\n'
		fi
	fi

	exec "$@"
}

main "$@"
