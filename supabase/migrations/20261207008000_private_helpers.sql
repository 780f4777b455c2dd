-- tollgate: two helpers anon and signed-in callers could execute, closed to them.
--
-- tollgate_catalog_row(tollgate_catalogs) was opened to anon and authenticated with the
-- catalog functions (20261205006000), and it answers a version's `published_by`, which
-- 20261206017000 made the operators' alone: only the service role's functions call it.
-- tollgate_seat_history() (20261205001000) is a trigger function and kept PostgreSQL's
-- default EXECUTE for everyone; PostgreSQL calls a trigger function without that privilege,
-- so no caller needs it.
-- Idempotent: safe to apply to an empty database and again on top of itself.

revoke all on function public.tollgate_catalog_row(public.tollgate_catalogs) from public, anon, authenticated;
grant execute on function public.tollgate_catalog_row(public.tollgate_catalogs) to service_role;
revoke all on function public.tollgate_seat_history() from public, anon, authenticated;
