-- ADD CONSTRAINT in its forms: CHECK, NOT VALID, UNIQUE, PRIMARY KEY, FOREIGN KEY.
alter table messages add constraint body_len check (length(body) < 100) not valid;
alter table messages add check (char_length(body) > 0);
alter table public.messages add constraint m_uq unique (room_id, "Seq");
alter table public.messages add unique nulls not distinct (slug);
alter table messages add primary key (id);
ALTER TABLE public.messages ADD CONSTRAINT m_fk FOREIGN KEY (room_id) REFERENCES rooms (id);
alter table messages add foreign key (author) references auth.users on delete cascade not valid;
alter table messages add constraint "Body Length" check (length(body) < 100);
alter table messages add constraint m_uq unique using index m_uq_idx;
alter table messages add constraint m_pk primary key using index m_pk_idx;
alter table bookings add constraint no_overlap exclude using gist (room with =, during with &&);
alter table messages validate constraint body_len;
alter table messages drop constraint if exists body_len;
alter table messages add constraint c check (note <> 'not valid');
alter table messages add constraint c check (note <> ')') not valid;
