DROP TABLE delivery_attempts;
DROP INDEX deliveries_notification;
DELETE FROM deliveries WHERE notification_id IS NULL;
ALTER TABLE deliveries
    DROP CONSTRAINT deliveries_url_format,
    DROP CONSTRAINT deliveries_lease_complete,
    DROP CONSTRAINT deliveries_one_subject,
    DROP COLUMN lease_expires_at,
    DROP COLUMN lease_owner,
    DROP COLUMN url,
    DROP COLUMN system_alert_id,
    ALTER COLUMN notification_id SET NOT NULL;
ALTER TABLE system_alerts DROP CONSTRAINT system_alerts_dedup_key_unique, DROP COLUMN dedup_key;
ALTER TABLE notifications DROP COLUMN links;
UPDATE strategy_templates SET parameters = parameters - 'stat_triggers' WHERE id = 'post-game-spike';
DROP INDEX strategies_active_kind;
ALTER TABLE strategies
    DROP CONSTRAINT strategies_scan_complete,
    DROP COLUMN scan_time_zone,
    DROP COLUMN scan_time,
    DROP COLUMN priority;
DROP TABLE sign_in_failures;
