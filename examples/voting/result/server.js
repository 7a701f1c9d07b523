// The voting sample's result page (Node): the totals from Postgres, which the page polls each
// second. As the sample's own, but with the database's host, port and password from the
// environment (its compose file names the host "db"): squadron.yaml sets them.
const express = require('express');
const { Pool } = require('pg');
const fs = require('fs');
const path = require('path');

const password = fs.readFileSync(path.join(process.env.SQUADRON_SECRETS_DIR, 'db_password'), 'utf8').trim();
const pool = new Pool({
  host: process.env.DB_HOST || 'db',
  port: Number(process.env.DB_PORT || 5432),
  user: 'postgres',
  password,
  database: 'postgres',
  max: 4,
});

const app = express();

app.get('/api/results', async (req, res) => {
  try {
    const r = await pool.query('SELECT vote, COUNT(id) AS count FROM votes GROUP BY vote');
    const votes = { a: 0, b: 0 };
    for (const row of r.rows) votes[row.vote] = Number(row.count);
    res.json(votes);
  } catch (err) {
    // The worker makes the table with its first connection: no table yet is no vote yet.
    if (err.code === '42P01') return res.json({ a: 0, b: 0 });
    res.status(503).json({ title: 'the database is not answering', detail: err.message });
  }
});

app.get('/', (req, res) => {
  res.type('html').send(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Cats vs Dogs -- Result</title></head>
<body>
<h1>Cats vs Dogs</h1>
<p>Cats: <span id="a">0</span> &middot; Dogs: <span id="b">0</span> &middot;
<span id="total">No votes yet</span></p>
<script>
async function poll() {
  try {
    const here = location.pathname.endsWith('/') ? location.pathname : location.pathname + '/';
    const v = await (await fetch(here + 'api/results')).json();
    document.getElementById('a').textContent = v.a;
    document.getElementById('b').textContent = v.b;
    const n = v.a + v.b;
    document.getElementById('total').textContent = n === 0 ? 'No votes yet' : n + (n === 1 ? ' vote' : ' votes');
  } catch (e) {}
}
poll();
setInterval(poll, 1000);
</script>
</body></html>`);
});

const port = Number(process.env.PORT || 80);
const server = app.listen(port, '127.0.0.1', () => console.log(`Listening on port ${port}`));
process.on('SIGTERM', () => server.close(() => pool.end().then(() => process.exit(0))));
