-- What a kind asks of an event's amount: {"required": bool, "positive": bool}, or NULL
-- for no rule (the amount is optional and any decimal).
ALTER TABLE event_kinds ADD COLUMN amount jsonb;
