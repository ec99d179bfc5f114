-- Whether a statement sets a lock timeout.
set lock_timeout = '5s';
SET LOCAL lock_timeout TO '2s';
select set_config('lock_timeout', '3s', false);
set statement_timeout = '10s';
alter table t add column c int;
reset lock_timeout;
select 1 -- no lock_timeout is set here
;
set session lock_timeout = '1s';
alter role authenticated set lock_timeout = '1s';
alter database postgres set lock_timeout to '1s';
create function f() returns void language sql set lock_timeout = '1s' as 'select 1';
do $$ begin set lock_timeout = '1s'; end $$;
