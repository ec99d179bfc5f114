-- Schemas, owners, the realtime publication and functions, the CLI ledger
-- and database webhooks.
DO $$
DECLARE
  s text;
BEGIN
  FOREACH s IN ARRAY ARRAY['auth', 'storage', 'extensions', 'graphql', 'graphql_public', 'realtime',
                           'supabase_migrations', 'vault', 'supabase_functions'] LOOP
    ASSERT to_regnamespace(s) IS NOT NULL, format('schema %s is missing', s);
  END LOOP;
  ASSERT (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'auth') = 'supabase_admin',
    'auth is owned by supabase_admin';
  ASSERT (SELECT relowner::regrole::text FROM pg_class WHERE oid = 'auth.users'::regclass) = 'supabase_auth_admin',
    'auth.users is owned by supabase_auth_admin';
  ASSERT (SELECT relowner::regrole::text FROM pg_class WHERE oid = 'storage.objects'::regclass) = 'supabase_storage_admin',
    'storage.objects is owned by supabase_storage_admin';
  ASSERT has_schema_privilege('anon', 'auth', 'USAGE') AND has_schema_privilege('authenticated', 'auth', 'USAGE')
     AND has_schema_privilege('service_role', 'auth', 'USAGE'), 'API roles need USAGE on auth';
  ASSERT has_function_privilege('anon', 'auth.uid()', 'EXECUTE'), 'anon may call auth.uid()';
  ASSERT has_schema_privilege('anon', 'public', 'USAGE') AND has_schema_privilege('service_role', 'public', 'USAGE'),
    'API roles need USAGE on public';
  ASSERT has_schema_privilege('authenticated', 'extensions', 'USAGE'), 'API roles need USAGE on extensions';
  ASSERT has_schema_privilege('anon', 'graphql_public', 'USAGE'), 'API roles need USAGE on graphql_public';

  ASSERT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime'),
    'publication supabase_realtime must exist';

  ASSERT (SELECT array_agg(column_name::text ORDER BY ordinal_position) FROM information_schema.columns
          WHERE table_schema = 'supabase_migrations' AND table_name = 'schema_migrations')
         = ARRAY['version', 'statements', 'name'], 'supabase_migrations.schema_migrations columns';
  ASSERT (SELECT array_agg(column_name::text ORDER BY ordinal_position) FROM information_schema.columns
          WHERE table_schema = 'supabase_migrations' AND table_name = 'seed_files')
         = ARRAY['path', 'hash'], 'supabase_migrations.seed_files columns';
END
$$;

-- what migrations do with the publication
BEGIN;
CREATE TABLE public.chat (id bigint PRIMARY KEY, body text);
ALTER PUBLICATION supabase_realtime ADD TABLE public.chat;
ALTER PUBLICATION supabase_realtime OWNER TO postgres;
DO $$ BEGIN
  ASSERT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = 'supabase_realtime' AND tablename = 'chat'),
    'ALTER PUBLICATION ADD TABLE must work';
END $$;
ALTER PUBLICATION supabase_realtime DROP TABLE public.chat;
DROP PUBLICATION supabase_realtime;
CREATE PUBLICATION supabase_realtime FOR TABLE public.chat;
ROLLBACK;

-- the CLI ledger
BEGIN;
INSERT INTO supabase_migrations.schema_migrations (version, name, statements)
VALUES ('20240101000000', 'init', ARRAY['create table x (id int)']);
INSERT INTO supabase_migrations.seed_files (path, hash) VALUES ('supabase/seed.sql', 'abc');
ROLLBACK;

-- realtime: private-channel policies and broadcast triggers
BEGIN;
CREATE TABLE public.rooms (id bigint PRIMARY KEY, title text);
CREATE FUNCTION public.rooms_broadcast() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
BEGIN
  PERFORM realtime.broadcast_changes('room:' || coalesce(new.id, old.id)::text, tg_op, tg_op,
                                     tg_table_name, tg_table_schema, new, old);
  RETURN NULL;
END
$$;
CREATE TRIGGER rooms_broadcast AFTER INSERT OR UPDATE OR DELETE ON public.rooms
  FOR EACH ROW EXECUTE FUNCTION public.rooms_broadcast();
INSERT INTO public.rooms VALUES (1, 'lobby');
UPDATE public.rooms SET title = 'hall' WHERE id = 1;
DO $$ BEGIN
  ASSERT (SELECT count(*) FROM realtime.messages WHERE topic = 'room:1') = 2, 'broadcast_changes must record';
  ASSERT (SELECT payload -> 'record' ->> 'title' FROM realtime.messages
          WHERE topic = 'room:1' AND event = 'UPDATE') = 'hall', 'payload carries the new record';
END $$;
CREATE POLICY "room members receive" ON realtime.messages FOR SELECT TO authenticated
  USING (realtime.topic() = 'room:1' AND extension = 'broadcast');
SET LOCAL ROLE authenticated;
SELECT set_config('realtime.topic', 'room:1', true);
DO $$ BEGIN
  ASSERT realtime.topic() = 'room:1', 'realtime.topic()';
  ASSERT (SELECT count(*) FROM realtime.messages) = 2, 'policy on realtime.messages must apply';
  -- no INSERT policy: the platform's send() turns the RLS error into a WARNING
  PERFORM realtime.send('{"hello": "world"}'::jsonb, 'greet', 'room:2', true);
END $$;
RESET ROLE;
DO $$ BEGIN
  ASSERT (SELECT relrowsecurity FROM pg_class WHERE oid = 'realtime.messages'::regclass), 'RLS on realtime.messages';
  ASSERT NOT EXISTS (SELECT 1 FROM realtime.messages WHERE topic = 'room:2'), 'send() without INSERT policy stores nothing';
  PERFORM realtime.send('{"hello": "world"}'::jsonb, 'greet', 'room:2');
  ASSERT (SELECT private AND extension = 'broadcast' FROM realtime.messages WHERE topic = 'room:2'),
    'send() stores a private broadcast';
END $$;
ROLLBACK;

-- database webhooks (supabase_functions.http_request), with and without pg_net
BEGIN;
CREATE TABLE public.orders (id bigint PRIMARY KEY, total numeric);
CREATE TRIGGER orders_webhook AFTER INSERT ON public.orders
  FOR EACH ROW EXECUTE FUNCTION supabase_functions.http_request(
    'https://example.com/hook', 'POST', '{"Content-Type":"application/json"}', '{}', '1000');
INSERT INTO public.orders VALUES (1, 10);
DO $$ BEGIN
  ASSERT (SELECT request_id IS NULL FROM supabase_functions.hooks WHERE hook_name = 'orders_webhook'),
    'without pg_net the hook is logged, not queued';
END $$;
CREATE EXTENSION IF NOT EXISTS pg_net;
INSERT INTO public.orders VALUES (2, 20);
DO $$
DECLARE
  q net.http_request_queue;
BEGIN
  SELECT * INTO q FROM net.http_request_queue
  WHERE id = (SELECT max(request_id) FROM supabase_functions.hooks WHERE hook_name = 'orders_webhook');
  ASSERT q.url = 'https://example.com/hook', 'the webhook must be queued through pg_net';
  ASSERT convert_from(q.body, 'UTF8')::jsonb -> 'record' ->> 'total' = '20', 'payload carries the record';
  ASSERT convert_from(q.body, 'UTF8')::jsonb ->> 'type' = 'INSERT', 'payload carries the operation';
END $$;
ROLLBACK;
