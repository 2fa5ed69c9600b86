-- Linear Road in Spate SQL: the rules of RULES.md as continuous queries.
-- Run with:  psql "host=127.0.0.1 port=5433 user=spate dbname=spate" -f bench/linearroad/queries.sql
-- then feed:  bin/spate gen lrb --expressways 1 --duration 10m | psql … -c "COPY reports FROM STDIN (FORMAT csv)"
-- Outputs: lrb_tolls (O0), lrb_accidents (O1), lrb_balances (O2), lrb_daily (O3),
-- in the column order of RULES.md. Their emit column is the event time (as
-- in the reference implementation); the harness replaces it with the wall
-- time at which each row arrived.
--
-- Intermediate queries keep ten minutes of rows for SELECT (retention);
-- the four output queries keep everything.
--
-- Timing conventions. A windowed query's rows are a stream whose event
-- time is window_end. Statistics of the minute that ends at S are used by
-- the reports of the minute that starts at S, so they are re-labelled with
-- a 1-second window whose window_start is S: they are complete one second
-- after S, and the reports of minute S find them with an equality on
-- minute_start plus an event-time bound.

CREATE STREAM reports (type BIGINT, time BIGINT, vid BIGINT, spd BIGINT, xway BIGINT,
  lane BIGINT, dir BIGINT, seg BIGINT, pos BIGINT, qid BIGINT, sinit BIGINT,
  send BIGINT, dow BIGINT, tod BIGINT, day BIGINT)
  WITH (event_time = 'time', time_unit = 's');

CREATE TABLE history (vid BIGINT, day BIGINT, xway BIGINT, tolls BIGINT);

-- D2: each car's average speed in a segment during a minute.
CREATE CONTINUOUS QUERY lrb_car_minute WITH (retention = '10 minutes') AS
  SELECT xway, dir, seg, vid, window_end, SUM(spd) / COUNT(*) AS carspd
  FROM reports WHERE type = 0
  GROUP BY xway, dir, seg, vid, TUMBLE(time, INTERVAL '1' MINUTE);

-- D3: cars and average speed per segment and minute, labelled by the
-- minute that uses them (minute_start).
CREATE CONTINUOUS QUERY lrb_seg_minute WITH (retention = '10 minutes') AS
  SELECT xway, dir, seg, window_start AS minute_start, window_end,
         COUNT(*) AS cars, SUM(carspd) / COUNT(*) AS avgspd
  FROM lrb_car_minute
  GROUP BY xway, dir, seg, TUMBLE(window_end, INTERVAL '1' SECOND);

-- D5: LAV over the five minutes before minute_start. The windows are
-- shifted by 2 s so that the one ending at minute_start + 2 s holds exactly
-- those minutes and closes two seconds into the minute.
CREATE CONTINUOUS QUERY lrb_seg_lav WITH (retention = '10 minutes') AS
  SELECT xway, dir, seg, window_end - 2 AS minute_start, window_end, SUM(avgspd) / COUNT(*) AS lav
  FROM lrb_seg_minute
  GROUP BY xway, dir, seg, HOP(window_end, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE, INTERVAL '2' SECOND);

-- D6, D8: each report with the car's previous segment and whether the car
-- has stood at this place for its last four reports.
CREATE CONTINUOUS QUERY lrb_car_hist WITH (retention = '10 minutes') AS
  SELECT vid, time, xway, dir, lane, seg, pos,
         LAG(seg) OVER (PARTITION BY vid ORDER BY time) AS prev_seg,
         COALESCE(
           LAG(xway, 1) OVER (PARTITION BY vid ORDER BY time) = xway AND LAG(dir, 1) OVER (PARTITION BY vid ORDER BY time) = dir AND
           LAG(lane, 1) OVER (PARTITION BY vid ORDER BY time) = lane AND LAG(pos, 1) OVER (PARTITION BY vid ORDER BY time) = pos AND
           LAG(xway, 2) OVER (PARTITION BY vid ORDER BY time) = xway AND LAG(dir, 2) OVER (PARTITION BY vid ORDER BY time) = dir AND
           LAG(lane, 2) OVER (PARTITION BY vid ORDER BY time) = lane AND LAG(pos, 2) OVER (PARTITION BY vid ORDER BY time) = pos AND
           LAG(xway, 3) OVER (PARTITION BY vid ORDER BY time) = xway AND LAG(dir, 3) OVER (PARTITION BY vid ORDER BY time) = dir AND
           LAG(lane, 3) OVER (PARTITION BY vid ORDER BY time) = lane AND LAG(pos, 3) OVER (PARTITION BY vid ORDER BY time) = pos,
           false) AS stopped
  FROM reports WHERE type = 0;

-- D7: places with stopped reports of two or more cars in a minute, then one
-- row per segment, labelled by the minute the accident is in effect.
CREATE CONTINUOUS QUERY lrb_acc_place WITH (retention = '10 minutes') AS
  SELECT xway, dir, seg, window_end
  FROM lrb_car_hist WHERE stopped
  GROUP BY xway, dir, lane, pos, seg, TUMBLE(time, INTERVAL '1' MINUTE)
  HAVING COUNT(DISTINCT vid) >= 2;

CREATE CONTINUOUS QUERY lrb_acc_seg WITH (retention = '10 minutes') AS
  SELECT xway, dir, seg, window_start AS minute_start, window_end
  FROM lrb_acc_place
  GROUP BY xway, dir, seg, TUMBLE(window_end, INTERVAL '1' SECOND);

-- D8: segment entries.
CREATE CONTINUOUS QUERY lrb_entries WITH (retention = '10 minutes') AS
  SELECT vid, time, xway, dir, seg, lane, time - time % 60 AS minute_start
  FROM lrb_car_hist WHERE prev_seg IS NULL OR prev_seg <> seg;

-- D4: NOV.
CREATE CONTINUOUS QUERY lrb_e_nov WITH (retention = '10 minutes') AS
  SELECT e.vid, e.time, e.xway, e.dir, e.seg, e.lane, e.minute_start, COALESCE(s.cars, 0) AS nov
  FROM lrb_entries e LEFT JOIN lrb_seg_minute s
    ON s.xway = e.xway AND s.dir = e.dir AND s.seg = e.seg AND s.minute_start = e.minute_start
   AND s.window_end BETWEEN e.time - 60 AND e.time + 1;

-- D5: LAV.
CREATE CONTINUOUS QUERY lrb_e_lav WITH (retention = '10 minutes') AS
  SELECT e.vid, e.time, e.xway, e.dir, e.seg, e.lane, e.minute_start, e.nov, COALESCE(l.lav, 0) AS lav
  FROM lrb_e_nov e LEFT JOIN lrb_seg_lav l
    ON l.xway = e.xway AND l.dir = e.dir AND l.seg = e.seg AND l.minute_start = e.minute_start
   AND l.window_end BETWEEN e.time - 60 AND e.time + 2;

-- D9: accident segments 0..4 segments downstream, one row per match.
CREATE CONTINUOUS QUERY lrb_e_acc WITH (retention = '10 minutes') AS
  SELECT e.vid, e.time, e.xway, e.dir, e.seg, e.lane, e.nov, e.lav, a.seg AS aseg
  FROM lrb_e_lav e LEFT JOIN lrb_acc_seg a
    ON a.xway = e.xway AND a.dir = e.dir AND a.minute_start = e.minute_start
   AND a.window_end BETWEEN e.time - 60 AND e.time + 1
   AND ((e.dir = 0 AND a.seg BETWEEN e.seg AND e.seg + 4) OR (e.dir = 1 AND a.seg BETWEEN e.seg - 4 AND e.seg));

-- D10: one row per entry with the nearest accident ahead and the toll.
CREATE CONTINUOUS QUERY lrb_tolled WITH (retention = '10 minutes') AS
  SELECT vid, time, window_end, xway, dir, seg, lane, nov, lav,
         CASE WHEN dir = 0 THEN MIN(aseg) ELSE MAX(aseg) END AS aseg,
         CASE WHEN lane <> 4 AND nov > 50 AND lav < 40 AND COUNT(aseg) = 0
              THEN 2 * (nov - 50) * (nov - 50) ELSE 0 END AS toll
  FROM lrb_e_acc
  GROUP BY vid, time, xway, dir, seg, lane, nov, lav, TUMBLE(time, INTERVAL '1' SECOND);

-- O0, O1: notifications.
CREATE CONTINUOUS QUERY lrb_tolls AS
  SELECT 0 AS type, vid, time, time AS emit, lav, toll FROM lrb_tolled WHERE lane <> 4;

CREATE CONTINUOUS QUERY lrb_accidents AS
  SELECT 1 AS type, vid, time, time AS emit, aseg AS seg FROM lrb_tolled WHERE lane <> 4 AND aseg IS NOT NULL;

-- Charges: each entry pays the toll of the car's previous entry.
CREATE CONTINUOUS QUERY lrb_charges WITH (retention = '10 minutes') AS
  SELECT vid, time, window_end, LAG(toll) OVER (PARTITION BY vid ORDER BY window_end) AS charge
  FROM lrb_tolled;

CREATE CONTINUOUS QUERY lrb_balance WITH (retention = '10 minutes') AS
  SELECT vid, time, window_end,
         SUM(charge) OVER (PARTITION BY vid ORDER BY window_end ROWS UNBOUNDED PRECEDING) AS balance
  FROM lrb_charges WHERE charge > 0;

-- O2: account balance answers (charges up to and including the request's second).
CREATE CONTINUOUS QUERY lrb_bal_match WITH (retention = '10 minutes') AS
  SELECT q.qid, q.time, b.time AS btime, b.balance
  FROM reports q LEFT JOIN lrb_balance b
    ON b.vid = q.vid AND b.window_end BETWEEN q.time - 10800 AND q.time + 1 AND b.time <= q.time
  WHERE q.type = 2;

CREATE CONTINUOUS QUERY lrb_balances AS
  SELECT 2 AS type, time, time AS emit, COALESCE(MAX(btime), 0) AS resulttime, qid, COALESCE(MAX(balance), 0) AS balance
  FROM lrb_bal_match
  GROUP BY qid, time, TUMBLE(time, INTERVAL '1' SECOND);

-- O3: daily expenditure answers from the history table.
CREATE CONTINUOUS QUERY lrb_daily AS
  SELECT 3 AS type, q.time, q.time AS emit, q.qid, COALESCE(h.tolls, 0) AS balance
  FROM reports q LEFT JOIN history h ON h.vid = q.vid AND h.day = q.day AND h.xway = q.xway
  WHERE q.type = 3;
