-- Statements the gate's shape reading has nothing to say about.
create table public.t (id bigint primary key, note text not null);
create view v as select * from t;
insert into t (id) values (1);
select * from t where true;
grant select on t to anon;
alter table t enable row level security;
alter table t owner to postgres;
alter table t set (fillfactor = 70);
comment on table t is 'drop table t';
create extension if not exists pgcrypto;
vacuum analyze t;
