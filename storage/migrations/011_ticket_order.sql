-- Q3: the window-independent part of the priority order key, stored on the ticket.
--
--   order_at = queued_at − boost(priority)        (hub.domain.queue.order_at)
--
-- Call next reads the first few waiting tickets of each group the window serves from
-- ticket_order_idx and adds the window's rank delay (hub/services/queue_pick.py), instead of
-- sorting the hall's whole waiting queue on every call. Rows queued before this migration get
-- the default policy's credits (green_channel 1800 s, vip 1200 s, appointment 900 s).
ALTER TABLE ticket ADD COLUMN order_at timestamptz;
UPDATE ticket SET order_at = queued_at - make_interval(secs => CASE priority
    WHEN 'green_channel' THEN 1800 WHEN 'vip' THEN 1200 WHEN 'appointment' THEN 900 ELSE 0 END);
ALTER TABLE ticket ALTER COLUMN order_at SET NOT NULL;

DROP INDEX ticket_waiting_idx;
-- The waiting queue of a hall's day per group, in calling order (call next, "turn near",
-- a ticket's position, waiting counts).
CREATE INDEX ticket_order_idx ON ticket (hall_id, service_day, group_id, order_at, id)
    WHERE status = 'waiting';
-- Tickets transferred to one window.
CREATE INDEX ticket_target_idx ON ticket (target_window_id, order_at, id)
    WHERE status = 'waiting' AND target_window_id IS NOT NULL;

-- A queue event's slot and the counts it carries, in one round trip: take the hall topic's
-- next number (locking the topic row until commit, as realtime/outbox.py claim() does), then
-- count the waiting tickets per group in a new statement, whose snapshot sees every queue
-- change of the hall committed before this one took the topic (a volatile PL/pgSQL function
-- takes a fresh snapshot per statement under READ COMMITTED). hub/services/queue_events.py.
CREATE FUNCTION queue_claim(p_topic text, p_epoch bigint, p_hall bigint, p_day date,
                            OUT o_epoch bigint, OUT o_seq bigint,
                            OUT o_groups bigint[], OUT o_waiting bigint[])
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO topic AS t (name, epoch, seq) VALUES (p_topic, p_epoch, 1)
    ON CONFLICT (name) DO UPDATE SET seq = t.seq + 1
    RETURNING t.epoch, t.seq INTO o_epoch, o_seq;
    SELECT coalesce(array_agg(c.id ORDER BY c.id), '{}'),
           coalesce(array_agg(c.n ORDER BY c.id), '{}')
    INTO o_groups, o_waiting
    FROM (SELECT g.id, (SELECT count(*) FROM ticket k
                        WHERE k.hall_id = g.hall_id AND k.service_day = p_day
                          AND k.group_id = g.id AND k.status = 'waiting') AS n
          FROM service_group g WHERE g.hall_id = p_hall) c;
END
$$;
