-- Ticket numbers are taken inside the creating transaction (issue 15: a second transaction for the number,
-- taken while the create held a pooled connection, deadlocked the API under a burst).
--
-- A sequence never blocks and never rolls back, so blocks of numbers can be taken in any transaction.
-- ticket_number_days holds, per day (China time), the sequence value just before the day's first number:
-- a ticket's number is day-(value - base), so numbers start near 1 each day and are unique within it.
-- Days numbered before this migration keep going from their last number.
CREATE SEQUENCE ticket_number_seq INCREMENT BY 100;

CREATE TABLE ticket_number_days (
    day  date PRIMARY KEY,
    base bigint NOT NULL
);

INSERT INTO ticket_number_days (day, base) SELECT day, -last FROM ticket_counters;
