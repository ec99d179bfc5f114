-- Index builds: plain, unique, concurrently, if not exists, unnamed, on only.
CREATE INDEX messages_room_idx ON public.messages (room_id);
create unique index concurrently if not exists i on "Msg" (a);
create index on rooms (owner);
create index concurrently on rooms using gin (tags);
CREATE INDEX IF NOT EXISTS "Room Name Idx" ON ONLY "Chat"."Rooms" ("Name");
create index
  -- the name is on its own line
  rooms_created_idx
  on public.rooms (created_at desc) where archived is false;
create index i2 on Rooms (lower(name));
create index i3 on "my.schema"."my.table" (a);
drop index concurrently if exists rooms_created_idx;
