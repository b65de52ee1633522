-- Seed 000 §19: continuing after a term needs re-evaluation, so a renewal is an application
-- (kind RENEWAL, naming the agreement it would renew) that goes through review and approval.
ALTER TABLE membership_application
    ADD COLUMN kind text NOT NULL DEFAULT 'JOIN' CHECK (kind IN ('JOIN', 'RENEWAL')),
    ADD COLUMN renews_agreement_id bigint REFERENCES agreement (id),
    ADD CHECK ((kind = 'RENEWAL') = (renews_agreement_id IS NOT NULL));

-- A member admitted although it does not meet one of the alliance's inclusion criteria (纳入标准):
-- which criterion, and why (e.g. seed 003: 兼顾既往形成的合作关系), recorded rather than implied.
ALTER TABLE membership
    ADD COLUMN inclusion_exception text,
    ADD COLUMN inclusion_exception_reason text,
    ADD CHECK ((inclusion_exception IS NULL) = (inclusion_exception_reason IS NULL));
