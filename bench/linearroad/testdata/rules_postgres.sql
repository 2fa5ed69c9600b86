-- RULES.md as batch PostgreSQL over whole tables, so that the rules text
-- can be checked against the validator (rules_postgres_test.go). It is not
-- the engine's streaming queries. Tables: reports (the 15 INTEGER columns)
-- and history (vid, day, xway, tolls). Writes the four outputs into
-- out0..out3 with the columns of RULES.md.
-- Note: SUM over BIGINT is NUMERIC in PostgreSQL; the casts keep the
-- divisions integer divisions.

-- P with the minute (D1).
CREATE TEMP TABLE p AS
  SELECT *, time / 60 + 1 AS m FROM reports WHERE type = 0;

-- D2, D3.
CREATE TEMP TABLE cs AS
  SELECT xway, dir, seg, vid, m, CAST(SUM(spd) AS BIGINT) / COUNT(*) AS carspd
  FROM p GROUP BY xway, dir, seg, vid, m;
CREATE TEMP TABLE ss AS
  SELECT xway, dir, seg, m, COUNT(*) AS cars, CAST(SUM(carspd) AS BIGINT) / COUNT(*) AS avgspd
  FROM cs GROUP BY xway, dir, seg, m;
CREATE INDEX ON ss (xway, dir, seg, m);

-- D6 (stopped) and D8's LAG(seg).
CREATE TEMP TABLE pl AS
  SELECT *,
    LAG(seg) OVER w AS prev_seg,
    COALESCE(LAG(xway, 1) OVER w = xway AND LAG(dir, 1) OVER w = dir AND LAG(lane, 1) OVER w = lane AND LAG(pos, 1) OVER w = pos
         AND LAG(xway, 2) OVER w = xway AND LAG(dir, 2) OVER w = dir AND LAG(lane, 2) OVER w = lane AND LAG(pos, 2) OVER w = pos
         AND LAG(xway, 3) OVER w = xway AND LAG(dir, 3) OVER w = dir AND LAG(lane, 3) OVER w = lane AND LAG(pos, 3) OVER w = pos,
         false) AS stopped
  FROM p WINDOW w AS (PARTITION BY vid ORDER BY time);

-- D7: accident segments seen per minute.
CREATE TEMP TABLE acc AS
  SELECT DISTINCT xway, dir, seg, m FROM (
    SELECT xway, dir, lane, pos, seg, m FROM pl WHERE stopped
    GROUP BY xway, dir, lane, pos, seg, m HAVING COUNT(DISTINCT vid) >= 2) a;

-- D8 entries with D4 NOV, D5 LAV and D9's nearest accident ahead.
CREATE TEMP TABLE e0 AS
  SELECT * FROM pl WHERE prev_seg IS NULL OR prev_seg <> seg;
CREATE TEMP TABLE lav AS
  SELECT k.xway, k.dir, k.seg, k.m, CAST(SUM(s.avgspd) AS BIGINT) / COUNT(*) AS lav
  FROM (SELECT DISTINCT xway, dir, seg, m FROM e0) k
  JOIN ss s ON s.xway = k.xway AND s.dir = k.dir AND s.seg = k.seg AND s.m BETWEEN k.m - 5 AND k.m - 1
  GROUP BY k.xway, k.dir, k.seg, k.m;
CREATE TEMP TABLE entries AS
  SELECT e.vid, e.time, e.lane, e.xway, e.dir, e.seg, e.m,
    COALESCE(n.cars, 0) AS nov, COALESCE(l.lav, 0) AS lav,
    (SELECT CASE WHEN e.dir = 0 THEN MIN(a.seg) ELSE MAX(a.seg) END FROM acc a
      WHERE a.xway = e.xway AND a.dir = e.dir AND a.m = e.m - 1
        AND ((e.dir = 0 AND a.seg BETWEEN e.seg AND e.seg + 4) OR (e.dir = 1 AND a.seg BETWEEN e.seg - 4 AND e.seg))) AS aseg
  FROM e0 e
  LEFT JOIN ss n ON n.xway = e.xway AND n.dir = e.dir AND n.seg = e.seg AND n.m = e.m - 1
  LEFT JOIN lav l ON l.xway = e.xway AND l.dir = e.dir AND l.seg = e.seg AND l.m = e.m;
-- D10.
ALTER TABLE entries ADD COLUMN toll BIGINT;
UPDATE entries SET toll = CASE WHEN lane <> 4 AND nov > 50 AND lav < 40 AND aseg IS NULL
  THEN 2 * (nov - 50) * (nov - 50) ELSE 0 END;

-- O0, O1.
CREATE TEMP TABLE out0 AS SELECT 0 AS type, vid, time, time AS emit, lav, toll FROM entries WHERE lane <> 4;
CREATE TEMP TABLE out1 AS SELECT 1 AS type, vid, time, time AS emit, aseg AS seg FROM entries WHERE lane <> 4 AND aseg IS NOT NULL;

-- Charges, O2.
CREATE TEMP TABLE charges AS
  SELECT vid, time, COALESCE(LAG(toll) OVER (PARTITION BY vid ORDER BY time), 0) AS charge FROM entries;
CREATE TEMP TABLE out2 AS
  SELECT 2 AS type, q.time, q.time AS emit, COALESCE(MAX(c.time), 0) AS resulttime, q.qid, COALESCE(SUM(c.charge), 0) AS balance
  FROM reports q LEFT JOIN charges c ON c.vid = q.vid AND c.time <= q.time AND c.charge > 0
  WHERE q.type = 2 GROUP BY q.time, q.qid;

-- O3.
CREATE TEMP TABLE out3 AS
  SELECT 3 AS type, q.time, q.time AS emit, q.qid, COALESCE(SUM(h.tolls), 0) AS balance
  FROM reports q LEFT JOIN history h ON h.vid = q.vid AND h.day = q.day AND h.xway = q.xway
  WHERE q.type = 3 GROUP BY q.time, q.qid;
