-- DO blocks: their statements are read as if written outside.
do $$
begin
  alter table public.messages alter column note set not null;
end $$;
DO $body$ BEGIN truncate t; END $body$;
do language plpgsql $$ begin delete from audit; end $$;
do $$
declare
  n int;
begin
  update t set a = 1;
  select count(*) into n from t;
end
$$ language plpgsql;
do $$ begin raise notice 'delete from audit'; end $$;
create function wipe() returns void language sql as $$ delete from audit $$;
create or replace function f() returns trigger language plpgsql as $fn$
begin
  update counters set n = n + 1;
  return new;
end $fn$;
