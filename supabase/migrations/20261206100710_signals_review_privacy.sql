-- Reviews are public, their authors are not: anonymous readers see a review's rating and
-- comment but not the reviewer's user id (signed-in users keep reading whole rows, under
-- the same policy).
revoke select on public.reviews from anon;
grant select (id, strategy_id, rating, comment, created_at, updated_at) on public.reviews to anon;
