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
