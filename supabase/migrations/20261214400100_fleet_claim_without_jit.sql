-- Claims never JIT-compile.
--
-- claim_jobs finds the queue's priorities with a recursive CTE, whose row estimate the
-- planner cannot know (it guesses 1,000 priorities, each with a tenth of the queue due):
-- with a large queue the estimated cost of one claim crosses jit_above_cost,
-- jit_inline_above_cost and jit_optimize_above_cost, and PostgreSQL compiles the plan with
-- LLVM on every call. Measured with 1,000,000 jobs waiting and 100,000 due: the claim of
-- 100 jobs took 3.8 s, of which 3.6 s was JIT (generation, inlining, optimisation,
-- emission) and 0.2 s the scans themselves; the same claim with jit off takes
-- milliseconds. The estimate grows with the queue, which is why throughput fell as jobs
-- waited (bench queue).
--
-- The claim reads at most p_limit rows per priority through jobs_claim_idx: there is
-- nothing for JIT to win, so it is off for the function. Nothing else changes.

-- ======================================================================================
-- Functions
-- ======================================================================================
alter function public.claim_jobs(uuid, text[], integer, double precision, text[]) set jit = off;
