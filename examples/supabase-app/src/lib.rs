//! The application whose database `supabase/` holds; its tests are in `tests/`.
