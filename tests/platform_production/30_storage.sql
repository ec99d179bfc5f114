-- The storage service's own migrations, run as supabase_storage_admin (search path: storage).
alter table storage.buckets add column if not exists public boolean default false;
alter table storage.buckets add column if not exists avif_autodetection boolean default false;
alter table storage.buckets add column if not exists file_size_limit bigint null;
alter table storage.buckets add column if not exists allowed_mime_types text[] null;
alter table storage.buckets add column if not exists owner_id text default null;
alter table storage.buckets enable row level security;
alter table storage.migrations enable row level security;
alter table storage.objects add column if not exists path_tokens text[]
  generated always as (string_to_array(name, '/')) stored;
alter table storage.objects add column if not exists version text default null;
alter table storage.objects add column if not exists owner_id text default null;
alter table storage.objects add column if not exists user_metadata jsonb null;
alter table storage.objects drop constraint if exists objects_owner_fkey;

create or replace function storage.update_updated_at_column() returns trigger language plpgsql
  as $$ begin new.updated_at = now(); return new; end $$;
create trigger update_objects_updated_at before update on storage.objects
  for each row execute function storage.update_updated_at_column();

create or replace function storage.get_size_by_bucket() returns table (size bigint, bucket_id text)
  language plpgsql stable as $$ begin
  return query select sum((metadata ->> 'size')::int) as size, obj.bucket_id
    from storage.objects as obj group by obj.bucket_id; end $$;

create table if not exists storage.s3_multipart_uploads (
  id text primary key, in_progress_size bigint not null default 0,
  upload_signature text not null, bucket_id text not null references storage.buckets (id),
  key text collate "C" not null, version text not null, owner_id text,
  created_at timestamptz not null default now(), user_metadata jsonb
);
alter table storage.s3_multipart_uploads enable row level security;
grant all on storage.s3_multipart_uploads to service_role;
grant select on storage.s3_multipart_uploads to authenticated, anon;

insert into storage.migrations (id, name, hash)
values (0, 'create-migrations-table', 'm0'), (1, 'initialmigration', 'm1'),
       (8, 'add-public-to-buckets', 'm8'), (13, 'add-bucket-custom-limits', 'm13'),
       (21, 's3-multipart-uploads', 'm21'), (25, 'custom-metadata', 'm25');
