create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  username text unique
);

alter table public.profiles enable row level security;

create policy "profiles are readable by signed-in users" on public.profiles
  for select to authenticated
  using (true);

create policy "users update their own profile" on public.profiles
  for update to authenticated
  using ((select auth.uid()) = id)
  with check ((select auth.uid()) = id);

-- Every new user gets a profile, named from the sign-up's metadata.
create function public.handle_new_user()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.profiles (id, username)
  values (new.id, new.raw_user_meta_data ->> 'username');
  return new;
end;
$$;

create trigger on_auth_user_created
  after insert on auth.users
  for each row execute function public.handle_new_user();
