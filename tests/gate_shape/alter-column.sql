-- Column changes: SET NOT NULL, TYPE, and what is neither.
alter table messages alter column room_id set not null;
alter table messages alter "Room" set not null;
alter table public.t alter column n type bigint;
alter table t alter column n set data type numeric(12, 2) using n::numeric;
ALTER TABLE t ALTER COLUMN created TYPE timestamptz USING created AT TIME ZONE 'UTC';
alter table t alter column n drop not null;
alter table t alter column n set default 0;
alter table t alter column n drop default;
alter table t alter column n set statistics 1000;
