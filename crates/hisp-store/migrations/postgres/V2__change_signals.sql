-- What lets a store see other stores' changes without reading the tables
-- they changed (`Store::directory_version` and `Store::outside_changes`),
-- for several `hisp serve` instances and the CLI on one database.

-- Named counters. 'directory' moves with every statement that changes the
-- directory and trust material (domains, addresses, certificates with
-- their keys, anchors, bundles; rows removed by ON DELETE CASCADE
-- included), so a server's caches of parsed keys and anchor stores can
-- tell they are stale by reading one row. Those tables change seldom, so
-- one row written by each such transaction holds nobody up.
CREATE TABLE store_counters (
    name  text PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO store_counters (name, value) VALUES ('directory', 0);

CREATE FUNCTION directory_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE store_counters SET value = value + 1 WHERE name = 'directory';
    RETURN NULL;
END;
$$;
CREATE TRIGGER domains_changed AFTER INSERT OR UPDATE OR DELETE ON domains
    FOR EACH STATEMENT EXECUTE FUNCTION directory_changed();
CREATE TRIGGER addresses_changed AFTER INSERT OR UPDATE OR DELETE ON addresses
    FOR EACH STATEMENT EXECUTE FUNCTION directory_changed();
CREATE TRIGGER certificates_changed AFTER INSERT OR UPDATE OR DELETE ON certificates
    FOR EACH STATEMENT EXECUTE FUNCTION directory_changed();
CREATE TRIGGER anchors_changed AFTER INSERT OR UPDATE OR DELETE ON anchors
    FOR EACH STATEMENT EXECUTE FUNCTION directory_changed();
CREATE TRIGGER bundles_changed AFTER INSERT OR UPDATE OR DELETE ON bundles
    FOR EACH STATEMENT EXECUTE FUNCTION directory_changed();

-- Queue work made due: an entry queued, made due earlier (`hisp queue
-- retry`) or given back (a lease ended with the entry still pending and no
-- later). The notice goes to channel 'hisp_queue' when the transaction
-- commits (never for one rolled back), with the tag of the store that made
-- the change (its sessions' `hisp.store` setting), so that a store counts
-- other stores' changes and not its own. Claims, renewals and finished
-- attempts send none: they make nothing due.
CREATE FUNCTION queue_work_due() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hisp_queue', coalesce(current_setting('hisp.store', true), ''));
    RETURN NULL;
END;
$$;
CREATE TRIGGER queue_queued AFTER INSERT ON queue
    FOR EACH ROW EXECUTE FUNCTION queue_work_due();
CREATE TRIGGER queue_made_due AFTER UPDATE ON queue
    FOR EACH ROW
    WHEN (NEW.state = 'pending'
          AND (NEW.next_attempt_at < OLD.next_attempt_at
               OR (OLD.lease_token IS NOT NULL AND NEW.lease_token IS NULL
                   AND NEW.next_attempt_at <= OLD.next_attempt_at)))
    EXECUTE FUNCTION queue_work_due();
