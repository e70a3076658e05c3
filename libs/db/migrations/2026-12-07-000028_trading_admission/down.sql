DROP FUNCTION trading_admission(uuid, text, uuid);
