// Drives Spate through node-postgres (the npm package pg), as Node
// applications and tools built on it do. cmd/spate/clients_test.go runs it
// (with NODE_PATH pointing at the installed pg and TZ=UTC) and checks what
// it prints: one record a line, fields separated by tabs, NULL as \N;
// "step <name>" starts a step, "error <message>" reports that it failed.
// Connection: PGHOST, PGPORT, PGUSER, PGDATABASE (read by pg itself).
// SPATE_RELATIONS lists the relations whose columns it reads;
// SPATE_SUB_INSERT is the INSERT its SUBSCRIBE step runs on a second
// connection.
'use strict';
const { Client } = require('pg');

function clean(s) {
  return String(s).replace(/\\/g, '\\\\').replace(/\t/g, ' ').replace(/\r/g, '').replace(/\n/g, ' | ');
}

function out(...fields) {
  console.log(fields.map((f) => (f === null || f === undefined ? '\\N' : clean(f))).join('\t'));
}

// value renders a column from the JavaScript type pg mapped it to.
function value(v) {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString().slice(0, 19).replace('T', ' ');
  if (typeof v === 'object' && 'toPostgres' in v) {
    // An interval (postgres-interval): report it in seconds.
    const d = ((v.years || 0) * 12 + (v.months || 0)) * 30 + (v.days || 0);
    return String(Math.round(d * 86400 + (v.hours || 0) * 3600 + (v.minutes || 0) * 60 + (v.seconds || 0) + (v.milliseconds || 0) / 1000));
  }
  return String(v);
}

function result(r, kind) {
  for (const f of r.fields) out('field', f.name, f.dataTypeID);
  for (const row of r.rows) {
    out(kind, ...r.fields.map((f) => value(row[f.name])));
    out('types', ...r.fields.map((f) => (row[f.name] === null ? 'null' : row[f.name] instanceof Date ? 'Date' : typeof row[f.name])));
  }
}

async function step(name, fn) {
  out('step', name);
  try {
    await fn();
  } catch (e) {
    out('error', (e.code ? e.code + ' ' : '') + e.message);
  }
}

async function main() {
  const c = new Client({ application_name: 'spate-node-test' });
  let ok = false;
  await step('connect', async () => {
    await c.connect();
    ok = true;
    const r = await c.query('SHOW server_version');
    out('server', r.rows[0].server_version);
  });
  if (!ok) return;
  await step('relations', async () => {
    const r = await c.query(
      `SELECT c.relname, c.relkind FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind = ANY($2) ORDER BY c.relname`,
      ['public', ['r', 'v', 'm']]);
    for (const row of r.rows) out('rel', row.relname, row.relkind);
  });
  for (const rel of (process.env.SPATE_RELATIONS || 'readings,sites,per_site,hot').split(',')) {
    await step('columns ' + rel, async () => {
      const r = await c.query(
        `SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type
           FROM pg_catalog.pg_attribute a
          WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attnum`,
        [rel]);
      for (const row of r.rows) out('column', rel, row.attname, row.type);
    });
  }
  await step('select per_site', async () => {
    result(await c.query('SELECT site, n, total, last_seq FROM per_site WHERE n >= $1 ORDER BY site', [1]), 'row');
  });
  await step('select hot', async () => {
    result(await c.query('SELECT * FROM hot WHERE seq >= $1 ORDER BY seq', [0]), 'row');
  });
  await step('prepared', async () => {
    // A named statement: parsed once, executed twice.
    const q = { name: 'by_site', text: 'SELECT site, n, total, last_seq FROM per_site WHERE site = $1' };
    for (const site of ['north', 'south']) {
      const r = await c.query({ ...q, values: [site] });
      for (const row of r.rows) out('row', row.site, row.n, row.total, row.last_seq);
    }
    const ins = await c.query('INSERT INTO sites VALUES ($1, $2, $3)', ['west', 'sa', 7]);
    out('inserted', ins.rowCount);
    const r = await c.query('SELECT region, capacity FROM sites WHERE site = $1', ['west']);
    for (const row of r.rows) out('site', row.region, row.capacity);
  });
  await step('subscribe', async () => {
    // SUBSCRIBE through a cursor; SPATE_SUB_INSERT runs on a second
    // connection while it is open.
    await c.query('BEGIN');
    try {
      await c.query('DECLARE c CURSOR FOR SUBSCRIBE per_site');
      // The current rows, one per site (SPATE_SITES), maybe in pieces.
      let have = 0;
      for (let k = 0; k < 10 && have < Number(process.env.SPATE_SITES); k++) {
        const r = await c.query("FETCH 10 FROM c WITH (timeout = '1s')");
        if (k === 0) for (const f of r.fields) out('col', f.name, f.dataTypeID);
        for (const row of r.rows) out('sub', ...r.fields.map((f) => value(row[f.name])));
        have += r.rows.length;
      }
      const other = new Client({ application_name: 'spate-node-test' });
      await other.connect();
      await other.query(process.env.SPATE_SUB_INSERT);
      await other.end();
      let got = 0;
      for (let k = 0; k < 10 && got < 2; k++) {
        const r = await c.query("FETCH 10 FROM c WITH (timeout = '1s')");
        for (const row of r.rows) out('change', ...r.fields.map((f) => value(row[f.name])));
        got += r.rows.length;
      }
      await c.query('CLOSE c');
    } finally {
      await c.query('COMMIT');
    }
  });
  await c.end();
}

main().catch((e) => {
  out('error', e.stack || e);
  process.exit(1);
});
