-- The image's migrations, run as supabase_admin: postgres demoted, keeping what it may do.
grant all on database platform_prod to postgres;
grant all on schema auth to postgres;
grant all on schema extensions to postgres;
grant all on schema storage to postgres;
grant all on all tables in schema auth to postgres;
grant all on all tables in schema storage to postgres;
grant all on all tables in schema extensions to postgres;
grant all on all sequences in schema auth to postgres;
grant all on all sequences in schema storage to postgres;
grant all on all routines in schema auth to postgres;
grant all on all routines in schema storage to postgres;
alter role postgres nosuperuser createdb createrole login replication bypassrls;

grant supabase_auth_admin, supabase_storage_admin to postgres;
grant anon, authenticated, service_role to postgres;
grant pg_monitor, pg_read_all_data, pg_signal_backend to postgres;

create schema if not exists realtime;
grant usage on schema realtime to postgres, anon, authenticated, service_role;
alter default privileges in schema realtime grant all on tables to postgres, anon, authenticated, service_role;
alter role authenticator set lock_timeout to '8s';
alter role authenticator set session_preload_libraries = '';
