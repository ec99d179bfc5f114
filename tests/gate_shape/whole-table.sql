-- Statements that change every row: TRUNCATE, DELETE and UPDATE without a WHERE.
truncate table public.a, only b restart identity cascade;
TRUNCATE ONLY c;
truncate d *;
truncate "Audit Log";
delete from messages;
delete from only public.messages;
delete from messages where id < 10;
delete from messages m using rooms r where m.room = r.id;
delete from messages where room_id in (select id from rooms where archived);
delete from messages where current of c;
update public.t set a = (select max(x) from u where u.id = 1);
update t set note = 'n' where note is null;
update t set note = 'where'
where id = 1;
update only t set a = 1;
update "T" set "A" = 1;
update t set a = b from u where u.id = t.id;
with gone as (delete from messages returning id) select count(*) from gone;
Truncate Only e;
with ids as (select id from t) delete from t;
with gone as (delete from messages where id < 3 returning id), kept as materialized (update t set a = 1 returning a) select 1;
with recursive r(n) as (select 1 union all select n + 1 from r where n < 3) select * from r;
