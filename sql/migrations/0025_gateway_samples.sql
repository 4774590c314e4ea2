-- 0025 CDR billing performance: gateway statistics folded in batches.
--
-- Updating a gateway's decayed ASR/ACD counters in every CDR's transaction was ~20 % of
-- a CDR's server CPU (callgrind: ~510,000 instructions of ~2.4M; the decay arithmetic in
-- numeric, the join to gateways, the row update) and made concurrent CDRs of one
-- gateway wait for each other's row lock. The CDR now appends one sample here, and
-- billing_private.fold_gateway_stats() (the fold_gateway_stats job, every minute) adds
-- the samples to billing.gateway_stats with the same exponential decay, so the
-- counters are the same sums; quality and reliability routing see them up to a
-- minute later (docs/billing.md, "Gateway statistics").
-- UNLOGGED: no WAL for a sample. A server crash empties the table; the samples of at
-- most the last minute are lost until refresh_gateway_stats() (every 10 minutes)
-- recomputes every gateway's counters from the rated CDRs.
CREATE UNLOGGED TABLE billing_private.gateway_samples (
    gateway      text NOT NULL,          -- billing_gateway of the CDR (a gateway name)
    answered     boolean NOT NULL,
    billsec      integer NOT NULL,       -- 0 when not answered
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
