-- The auth service's own migrations, run as supabase_auth_admin (its search path: auth).
alter table auth.users add column if not exists phone text null unique default null;
alter table auth.users add column if not exists phone_confirmed_at timestamptz null default null;
alter table auth.users add column if not exists phone_change text null default '';
alter table auth.users add column if not exists email_change_confirm_status smallint default 0
  check (email_change_confirm_status >= 0 and email_change_confirm_status <= 2);
alter table auth.users add column if not exists banned_until timestamptz null;
alter table auth.users add column if not exists deleted_at timestamptz null;
alter table auth.users add column if not exists is_sso_user boolean not null default false;
alter table auth.users add column if not exists is_anonymous boolean not null default false;
alter table auth.users alter column confirmed_at type timestamptz;
create index if not exists users_is_anonymous_idx on auth.users using btree (is_anonymous);

create table if not exists auth.identities (
  provider_id text not null, user_id uuid not null references auth.users (id) on delete cascade,
  identity_data jsonb not null, provider text not null, last_sign_in_at timestamptz,
  created_at timestamptz, updated_at timestamptz,
  email text generated always as (lower(identity_data ->> 'email')) stored,
  id uuid not null default gen_random_uuid() primary key,
  constraint identities_provider_id_provider_unique unique (provider_id, provider)
);
create index if not exists identities_user_id_idx on auth.identities using btree (user_id);

create table if not exists auth.sessions (
  id uuid not null primary key, user_id uuid not null references auth.users (id) on delete cascade,
  created_at timestamptz, updated_at timestamptz, not_after timestamptz, refreshed_at timestamp,
  user_agent text, ip inet, tag text
);
create index if not exists sessions_user_id_idx on auth.sessions using btree (user_id);
alter table auth.refresh_tokens add column if not exists session_id uuid null
  references auth.sessions (id) on delete cascade;
alter table auth.refresh_tokens add column if not exists parent varchar(255) null;

create type auth.factor_type as enum ('totp', 'webauthn', 'phone');
create type auth.factor_status as enum ('unverified', 'verified');
create table if not exists auth.mfa_factors (
  id uuid not null primary key, user_id uuid not null references auth.users (id) on delete cascade,
  friendly_name text, factor_type auth.factor_type not null, status auth.factor_status not null,
  created_at timestamptz not null, updated_at timestamptz not null, secret text
);
create table if not exists auth.one_time_tokens (
  id uuid primary key, user_id uuid not null references auth.users on delete cascade,
  token_type text not null, token_hash text not null check (char_length(token_hash) > 0),
  relates_to text not null, created_at timestamp not null default now(),
  updated_at timestamp not null default now()
);

create or replace function auth.jwt() returns jsonb language sql stable as $$
  select coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                  nullif(current_setting('request.jwt.claims', true), ''))::jsonb $$;
create or replace function auth.uid() returns uuid language sql stable as $$
  select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                  (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid $$;

do $$ begin
  alter table auth.schema_migrations enable row level security;
  alter table auth.instances enable row level security;
  alter table auth.users enable row level security;
  alter table auth.audit_log_entries enable row level security;
  alter table auth.refresh_tokens enable row level security;
  alter table auth.identities enable row level security;
  alter table auth.sessions enable row level security;
  alter table auth.mfa_factors enable row level security;
  alter table auth.one_time_tokens enable row level security;
  grant select on auth.users to postgres with grant option;
  grant select on auth.identities to postgres with grant option;
  grant select on auth.sessions to postgres with grant option;
end $$;

insert into auth.schema_migrations (version)
values ('20210909172000'), ('20220811173540'), ('20221003041349'), ('20240427152123'),
       ('20240612123726');
