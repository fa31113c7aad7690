-- Click-to-call of a callback task (漏接回拨): the agent rings the missed caller back by task id, never seeing the
-- number. The click-to-call and its CDR name the task they served.
ALTER TABLE click_calls ADD COLUMN callback_id bigint REFERENCES callback_tasks (id);
ALTER TABLE calls ADD COLUMN callback_id bigint REFERENCES callback_tasks (id);
CREATE INDEX calls_callback_idx ON calls (callback_id) WHERE callback_id IS NOT NULL;
