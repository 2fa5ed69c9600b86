// Capture client for capture.sh: the statements node-postgres sends (see parse_log.py).
const { Client } = require('pg');
(async () => {
  const c = new Client({ host: '127.0.0.1', port: 5544, user: 'postgres', database: 'postgres', application_name: 'node-pg' });
  await c.connect();
  await c.query("SELECT 'marker: query with parameters'");
  const r = await c.query('SELECT x, y FROM t WHERE x > $1 AND y <> $2', [0, 'a']);
  await c.end();
})();
