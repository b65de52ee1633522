-- Every replica keeps the hospitals it has read for the names on its pages
-- (adapters/registry/hospital_cache.py) and forgets them when this says the table changed,
-- whoever changed it: the gateway, a script, an administrator's UPDATE.
CREATE FUNCTION alliance_hospital_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('alliance_hospital_changed', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER hospital_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON hospital
    FOR EACH STATEMENT EXECUTE FUNCTION alliance_hospital_changed();
