-- The image's init scripts, run as postgres while it is still a superuser.
create publication supabase_realtime;
alter user supabase_admin with superuser createdb createrole replication bypassrls;
create user supabase_replication_admin with login replication;
create role supabase_read_only_user with login bypassrls;
grant pg_read_all_data to supabase_read_only_user;

create schema if not exists extensions;
create extension if not exists "uuid-ossp" with schema extensions;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists pg_stat_statements with schema extensions;

create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
create user authenticator noinherit;
grant anon to authenticator;
grant authenticated to authenticator;
grant service_role to authenticator;
grant supabase_admin to authenticator;

grant usage on schema public to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to postgres, anon, authenticated, service_role;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
alter user supabase_admin set search_path to public, extensions;
alter default privileges for user supabase_admin in schema public grant all on sequences to postgres, anon, authenticated, service_role;
alter default privileges for user supabase_admin in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for user supabase_admin in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';

-- auth, as the init script first made it (the auth service changes it later).
create schema if not exists auth authorization supabase_admin;
create table auth.users (
  instance_id uuid, id uuid not null unique, aud varchar(255), role varchar(255),
  email varchar(255) unique, encrypted_password varchar(255), confirmed_at timestamptz,
  invited_at timestamptz, confirmation_token varchar(255), confirmation_sent_at timestamptz,
  recovery_token varchar(255), recovery_sent_at timestamptz, email_change_token varchar(255),
  email_change varchar(255), email_change_sent_at timestamptz, last_sign_in_at timestamptz,
  raw_app_meta_data jsonb, raw_user_meta_data jsonb, is_super_admin bool,
  created_at timestamptz, updated_at timestamptz,
  constraint users_pkey primary key (id)
);
create index users_instance_id_email_idx on auth.users using btree (instance_id, email);
create index users_instance_id_idx on auth.users using btree (instance_id);
create table auth.refresh_tokens (
  instance_id uuid, id bigserial not null, token varchar(255), user_id varchar(255),
  revoked bool, created_at timestamptz, updated_at timestamptz,
  constraint refresh_tokens_pkey primary key (id)
);
create table auth.instances (
  id uuid not null, uuid uuid, raw_base_config text, created_at timestamptz, updated_at timestamptz,
  constraint instances_pkey primary key (id)
);
create table auth.audit_log_entries (
  instance_id uuid, id uuid not null, payload json, created_at timestamptz,
  constraint audit_log_entries_pkey primary key (id)
);
create table auth.schema_migrations (version varchar(255) not null primary key);
insert into auth.schema_migrations (version)
values ('20171026211738'), ('20171026211808'), ('20171026211834');
create or replace function auth.uid() returns uuid language sql stable
  as $$ select nullif(current_setting('request.jwt.claim.sub', true), '')::uuid $$;
create or replace function auth.role() returns text language sql stable
  as $$ select nullif(current_setting('request.jwt.claim.role', true), '')::text $$;
create or replace function auth.email() returns text language sql stable
  as $$ select nullif(current_setting('request.jwt.claim.email', true), '')::text $$;
grant usage on schema auth to anon, authenticated, service_role;
create user supabase_auth_admin noinherit createrole login noreplication;
grant all privileges on schema auth to supabase_auth_admin;
grant all privileges on all tables in schema auth to supabase_auth_admin;
grant all privileges on all sequences in schema auth to supabase_auth_admin;
alter user supabase_auth_admin set search_path = "auth";
alter table auth.users owner to supabase_auth_admin;
alter table auth.refresh_tokens owner to supabase_auth_admin;
alter table auth.audit_log_entries owner to supabase_auth_admin;
alter table auth.instances owner to supabase_auth_admin;
alter table auth.schema_migrations owner to supabase_auth_admin;
alter function auth.uid owner to supabase_auth_admin;
alter function auth.role owner to supabase_auth_admin;
alter function auth.email owner to supabase_auth_admin;

-- storage, as the init script first made it.
create schema if not exists storage authorization supabase_admin;
grant usage on schema storage to postgres, anon, authenticated, service_role;
alter default privileges in schema storage grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges in schema storage grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges in schema storage grant all on sequences to postgres, anon, authenticated, service_role;
create table storage.buckets (
  id text not null primary key, name text not null, owner uuid references auth.users,
  created_at timestamptz default now(), updated_at timestamptz default now()
);
create unique index bname on storage.buckets using btree (name);
create table storage.objects (
  id uuid not null default extensions.uuid_generate_v4() primary key,
  bucket_id text references storage.buckets (id), name text,
  owner uuid references auth.users, created_at timestamptz default now(),
  updated_at timestamptz default now(), last_accessed_at timestamptz default now(),
  metadata jsonb
);
create unique index bucketid_objname on storage.objects using btree (bucket_id, name);
create index name_prefix_search on storage.objects (name text_pattern_ops);
alter table storage.objects enable row level security;
create function storage.foldername(name text) returns text[] language plpgsql
  as $$ declare _parts text[]; begin select string_to_array(name, '/') into _parts;
  return _parts[1:array_length(_parts, 1) - 1]; end $$;
create function storage.filename(name text) returns text language plpgsql
  as $$ declare _parts text[]; begin select string_to_array(name, '/') into _parts;
  return _parts[array_length(_parts, 1)]; end $$;
create function storage.extension(name text) returns text language plpgsql
  as $$ declare _parts text[]; _filename text; begin
  select string_to_array(name, '/') into _parts; select _parts[array_length(_parts, 1)] into _filename;
  return split_part(_filename, '.', 2); end $$;
create table storage.migrations (
  id integer primary key, name varchar(100) unique not null, hash varchar(40) not null,
  executed_at timestamp default current_timestamp
);
create user supabase_storage_admin noinherit createrole login noreplication;
grant all privileges on schema storage to supabase_storage_admin;
grant all privileges on all tables in schema storage to supabase_storage_admin;
grant all privileges on all sequences in schema storage to supabase_storage_admin;
grant all privileges on all functions in schema storage to supabase_storage_admin;
alter user supabase_storage_admin set search_path = "storage";
alter schema storage owner to supabase_storage_admin;
alter table storage.objects owner to supabase_storage_admin;
alter table storage.buckets owner to supabase_storage_admin;
alter table storage.migrations owner to supabase_storage_admin;
alter function storage.foldername(text) owner to supabase_storage_admin;
alter function storage.filename(text) owner to supabase_storage_admin;
alter function storage.extension(text) owner to supabase_storage_admin;

-- post-setup: the roles' search paths.
alter role supabase_admin set search_path to "$user", public, auth, extensions;
alter role postgres set search_path to "$user", public, extensions;
