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

DO $$
DECLARE
    watched text;
BEGIN
    FOREACH watched IN ARRAY ARRAY['referral', 'consultation', 'consultation_report',
                                   'training_event', 'test_result', 'recognition_decision'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS alliance_change_notify ON %I', watched);
        EXECUTE format('CREATE TRIGGER alliance_change_notify AFTER INSERT OR UPDATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION alliance_change_notify()', watched);
    END LOOP;
END
$$;
