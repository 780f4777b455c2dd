-- tollgate: the scheduled run retries kept events through their keyset listing.
--
-- It read the 100 oldest open kept events (`tollgate_pending_events`) on every run, so once
-- 100 events only an operator can settle were kept, the ones behind them (a purchase whose
-- buyer has signed up since) were never retried. It now pages through
-- `tollgate_kept_events` (20261205000500) by its cursor, and nothing calls
-- `tollgate_pending_events` any more: dropped.
-- Idempotent: safe to apply to an empty database and again on top of itself.

drop function if exists public.tollgate_pending_events(text, text, integer);
