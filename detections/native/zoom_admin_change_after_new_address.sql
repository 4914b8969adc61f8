-- Zoom admin change within 30 minutes after the operator signed in from an address not seen for
-- them in the previous 30 days (and they signed in from another address in those 30 days).
-- Over detections/evaluate.py's table (one JSON list a field), all of the table's time.
WITH sign_ins AS MATERIALIZED (
  SELECT rowid AS id, json_extract(`user.name`, '$[0]') AS user, json_extract(`source.ip`, '$[0]') AS ip,
         CAST(strftime('%s', `@timestamp`) AS INTEGER) AS t
  FROM logs
  WHERE json_extract(`event.dataset`, '$[0]') = 'zoom.activity'
    AND json_extract(`event.action`, '$[0]') = 'sign-in'
    AND `source.ip` IS NOT NULL
),
new_addresses AS (
  SELECT s.* FROM sign_ins AS s
  WHERE NOT EXISTS (
      SELECT 1 FROM sign_ins AS p WHERE p.user = s.user AND p.ip = s.ip AND p.t < s.t AND p.t >= s.t - 30 * 86400)
    AND EXISTS (SELECT 1 FROM sign_ins AS h WHERE h.user = s.user AND h.t < s.t AND h.t >= s.t - 30 * 86400)
),
changes AS (
  SELECT rowid AS id, json_extract(`user.name`, '$[0]') AS user, CAST(strftime('%s', `@timestamp`) AS INTEGER) AS t
  FROM logs
  WHERE json_extract(`event.dataset`, '$[0]') = 'zoom.operation'
)
SELECT n.id AS sign_in, c.id AS change, n.user AS user, n.ip AS ip
FROM new_addresses AS n JOIN changes AS c ON c.user = n.user AND c.t > n.t AND c.t <= n.t + 1800
ORDER BY n.t, c.t
