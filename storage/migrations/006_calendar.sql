-- O11: the working-day calendar. Only exceptions to the weekday rule (Monday-Friday work) are
-- stored. The rules are those of hub/domain/calendar.py; the functions below give the same
-- answers in SQL (tested against Python in tests/hub/services/test_calendar.py).

-- National days: holidays (also weekend days inside a holiday span, for their names) and
-- make-up working days (调休上班). 'official' rows come from chinesecalendar
-- (007_calendar_official.sql) and are never edited; an 'admin' row of the same day overrides
-- the official one, and deleting it restores the official answer. No foreign keys, so that
-- the reference data outlive the organisation tables (updated_by is informational: the audit
-- log records who changed what).
CREATE TABLE calendar_day (
    day         date NOT NULL,
    source      text NOT NULL CHECK (source IN ('official', 'admin')),
    working     boolean NOT NULL,
    name        text CHECK (name IS NULL OR length(name) BETWEEN 1 AND 40),
    updated_by  bigint,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, source)
);

-- Years whose national schedule is known: every day of any other year is provisional
-- (weekends plus the fixed-date statutory holidays, see calendar_rule_working()).
CREATE TABLE calendar_year (
    year        integer PRIMARY KEY CHECK (year BETWEEN 1900 AND 2200),
    source      text NOT NULL CHECK (source IN ('official', 'admin')),
    note        text NOT NULL DEFAULT '',
    updated_by  bigint,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Local closures: a day one hall does not work (renovation, a local event). Another hall,
-- and the national calendar, are not affected.
CREATE TABLE hall_closure (
    hall_id     bigint NOT NULL REFERENCES hall (id) ON DELETE CASCADE,
    day         date NOT NULL,
    reason      text NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
    updated_by  bigint REFERENCES staff (id) ON DELETE SET NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (hall_id, day)
);

-- The statutory holidays fixed to a calendar date (元旦 1 Jan, 劳动节 1-2 May, 国庆节 1-3 Oct,
-- as amended in 2024): the name of p_day's, or NULL. Python: hub.domain.calendar.FIXED_HOLIDAYS.
CREATE FUNCTION calendar_fixed_holiday(p_day date) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE extract(month FROM p_day) * 100 + extract(day FROM p_day)
        WHEN 101 THEN '元旦'
        WHEN 501 THEN '劳动节'
        WHEN 502 THEN '劳动节'
        WHEN 1001 THEN '国庆节'
        WHEN 1002 THEN '国庆节'
        WHEN 1003 THEN '国庆节'
    END
$$;

-- The weekday rule for a day without a stored national row: Monday-Friday work; in a year
-- whose schedule is not known (p_known false) the fixed-date statutory holidays rest too.
-- Python: hub.domain.calendar.rule_day.
CREATE FUNCTION calendar_rule_working(p_day date, p_known boolean) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT extract(isodow FROM p_day) < 6 AND (p_known OR calendar_fixed_holiday(p_day) IS NULL)
$$;

-- Whether p_day is a working day of hall p_hall (NULL: the national calendar): a closure of
-- the hall, else the admin row, else the official row, else the rule.
CREATE FUNCTION hall_is_working_day(p_hall bigint, p_day date) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM hall_closure c WHERE c.hall_id = p_hall AND c.day = p_day)
            THEN false
        ELSE coalesce(
            (SELECT d.working FROM calendar_day d WHERE d.day = p_day
             ORDER BY d.source = 'admin' DESC LIMIT 1),
            calendar_rule_working(p_day, EXISTS (
                SELECT 1 FROM calendar_year y WHERE y.year = extract(year FROM p_day)::integer)))
    END
$$;

-- Every day from p_from to p_to with its answer, as hub.domain.calendar.WorkingCalendar.day
-- gives it: working, name, source ('closure', 'admin', 'official' or 'rule'), provisional.
CREATE FUNCTION hall_calendar(p_hall bigint, p_from date, p_to date)
RETURNS TABLE (day date, working boolean, name text, source text, provisional boolean)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT g.day,
           CASE WHEN c.hall_id IS NOT NULL THEN false
                WHEN n.source IS NOT NULL THEN n.working
                ELSE calendar_rule_working(g.day, y.year IS NOT NULL) END,
           CASE WHEN c.hall_id IS NOT NULL THEN c.reason
                WHEN n.source IS NOT NULL THEN n.name
                WHEN y.year IS NULL THEN calendar_fixed_holiday(g.day) END,
           CASE WHEN c.hall_id IS NOT NULL THEN 'closure'
                WHEN n.source IS NOT NULL THEN n.source
                ELSE 'rule' END,
           y.year IS NULL
    FROM (SELECT s::date AS day FROM generate_series(p_from, p_to, interval '1 day') s) g
    LEFT JOIN hall_closure c ON c.hall_id = p_hall AND c.day = g.day
    LEFT JOIN LATERAL (
        SELECT d.source, d.working, d.name FROM calendar_day d WHERE d.day = g.day
        ORDER BY d.source = 'admin' DESC LIMIT 1) n ON true
    LEFT JOIN calendar_year y ON y.year = extract(year FROM g.day)::integer
    ORDER BY g.day
$$;

-- The p_n-th working day after p_start, which itself is not counted (O11): the deadline of
-- a case accepted on p_start with a limit of p_n working days. p_n = 0 gives p_start; a
-- negative p_n counts backwards. Python: WorkingCalendar.add_working_days.
CREATE FUNCTION hall_add_working_days(p_hall bigint, p_start date, p_n integer) RETURNS date
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    v_day  date := p_start;
    v_left integer := abs(p_n);
    v_step integer := CASE WHEN p_n < 0 THEN -1 ELSE 1 END;
BEGIN
    IF p_start IS NULL OR p_n IS NULL THEN
        RETURN NULL;
    END IF;
    WHILE v_left > 0 LOOP
        v_day := v_day + v_step;
        IF hall_is_working_day(p_hall, v_day) THEN
            v_left := v_left - 1;
        END IF;
    END LOOP;
    RETURN v_day;
END
$$;

-- The working days after p_from up to and including p_to (0 when p_to <= p_from): working
-- days elapsed since acceptance. Python: WorkingCalendar.count_working_days.
CREATE FUNCTION hall_count_working_days(p_hall bigint, p_from date, p_to date) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT count(*)::integer
    FROM generate_series(p_from + 1, p_to, interval '1 day') s
    WHERE hall_is_working_day(p_hall, s::date)
$$;
