-- One ALTER TABLE, several actions; commas inside parentheses and quotes do not split.
alter table messages add constraint body_len check (length(body) < 100) not valid,
  alter column room_id set not null;
alter table if exists only public.t
  add column a int not null default 0,
  add constraint ck check (a in (1, 2, 3)),
  alter column b type text,
  drop column c,
  add column d text default 'x, y';
ALTER TABLE t ADD COLUMN a int, ADD COLUMN b uuid DEFAULT gen_random_uuid();
alter table t add column "a,b" int not null, add column c int;
