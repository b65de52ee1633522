-- Optional: lets the alliance gateway hear of changes at once instead of polling for them.
-- Installed by the hospital's DBA next to exchange.sql. The notification carries only the table's
-- name; the gateway then reads the changed rows by their updated_at, exactly as when polling, so a
-- missed notification delays an event but never loses it.
CREATE OR REPLACE FUNCTION alliance_change_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('alliance_exchange_change', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS alliance_change_notify ON referral;
CREATE TRIGGER alliance_change_notify AFTER INSERT OR UPDATE ON referral
    FOR EACH STATEMENT EXECUTE FUNCTION alliance_change_notify();
DROP TRIGGER IF EXISTS alliance_change_notify ON consultation;
CREATE TRIGGER alliance_change_notify AFTER INSERT OR UPDATE ON consultation
    FOR EACH STATEMENT EXECUTE FUNCTION alliance_change_notify();
DROP TRIGGER IF EXISTS alliance_change_notify ON consultation_report;
CREATE TRIGGER alliance_change_notify AFTER INSERT OR UPDATE ON consultation_report
    FOR EACH STATEMENT EXECUTE FUNCTION alliance_change_notify();
DROP TRIGGER IF EXISTS alliance_change_notify ON training_event;
CREATE TRIGGER alliance_change_notify AFTER INSERT OR UPDATE ON training_event
    FOR EACH STATEMENT EXECUTE FUNCTION alliance_change_notify();
DROP TRIGGER IF EXISTS alliance_change_notify ON test_result;
CREATE TRIGGER alliance_change_notify AFTER INSERT OR UPDATE ON test_result
    FOR EACH STATEMENT EXECUTE FUNCTION alliance_change_notify();
DROP TRIGGER IF EXISTS alliance_change_notify ON recognition_decision;
CREATE TRIGGER alliance_change_notify AFTER INSERT OR UPDATE ON recognition_decision
    FOR EACH STATEMENT EXECUTE FUNCTION alliance_change_notify();
