-- Policies that let anyone with the anon key read every row, and those that do not.
create policy "anon read" on public.messages for select to anon using (true);
create policy p on t using (true);
create policy p on t for all to public using ((true));
create policy p on t to anon, authenticated using ( true );
create policy "Public" on "Chat"."Rooms" as permissive for select using (true);
create policy p on t for select to authenticated using (true);
create policy p on t for insert to anon with check (true);
create policy p on t for select to anon using (owner = auth.uid());
create policy p on t as restrictive for select to anon using (true);
create policy p on t for update to anon using (true) with check (false);
create policy p on storage.objects for select to anon using (bucket_id = 'public');
alter policy p on t using (true);
drop policy p on t;
