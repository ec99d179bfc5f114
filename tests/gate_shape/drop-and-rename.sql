-- Drops and renames clients see.
drop table if exists public.a, b cascade;
drop table "Old Table";
DROP TABLE "Chat"."Rooms" RESTRICT;
alter table t drop column body;
alter table t drop body;
alter table t drop column if exists "Body" cascade;
alter table t drop constraint c;
alter table t rename to u;
alter table chat.rooms rename to "Rooms";
alter table t rename column a to b;
alter table t rename "A" to "B";
alter table t rename constraint c to d;
alter table if exists t rename to u;
alter index i rename to j;
drop view v;
drop materialized view mv;
