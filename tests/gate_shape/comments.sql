-- Comments and quotes inside statements: neither says what a statement does.
alter table t -- a comment naming drop column x
  add column c text;
delete from messages -- where id = 1
;
delete from messages /* where id = 1 */;
delete /* every row */ from messages;
update t set note = '--' where id = 1;
update t set note = 'a -- b' where id = 1;
delete from messages where body = 'it''s -- fine';
alter table t /* not valid */ add constraint c check (a > 0);
alter table t add constraint c check (a <> '--') not valid;
alter table t add column note text default '--', add column c2 int;
