-- ADD COLUMN: volatile defaults, constant ones, NOT NULL with and without a default.
alter table t add column c uuid default gen_random_uuid();
alter table t add column c uuid not null default uuid_generate_v4();
alter table t add column created timestamptz default clock_timestamp();
alter table t add column r float8 default random();
alter table t add column n bigint default nextval('t_n_seq');
alter table t add column made timestamptz default now();
alter table t add column c int default 0 not null;
alter table t add column c int not null;
alter table t add c text;
alter table t add column if not exists "Display Name" text not null default '';
alter table t add column default_role text not null;
alter table t add column note text default 'not null';
alter table t add column id bigint generated always as identity;
alter table t add column total numeric generated always as (price * qty) stored;
