// The Node peer for bench/run.py: `node app.js bare|session PORT`.
// The same routes as bench/server.py: /read (reads the session key n),
// /write (increments it; /write?k=<n> increments the key k<n> and counts
// the request as acknowledged once its answer is sent, after the save),
// /seed (starts a session with n = 0) and /tally (once no /write is in
// flight: the session's k<n> keys and the acknowledged writes per key).
// Settings: SESSION_HOST, SESSION_PORT, SESSION_USER, SESSION_PASSWORD,
// SESSION_DATABASE, SESSION_SECRET, BENCH_TABLE (the store's table).
// In session mode it listens only once the store is ready (its table made),
// as bench/server.py listens after `await store.open()`.
'use strict';
const express = require('express');

const [mode, port] = process.argv.slice(2);
const app = express();
app.set('etag', false);
app.set('x-powered-by', false);

const writes = { inFlight: 0, acked: {} };
// What must be done before the port opens (the store's table, in session mode).
let ready = Promise.resolve();

function keyOf(req) {
  const k = req.query.k;
  if (k === undefined) return 'n';
  return /^[0-9]{1,6}$/.test(k) ? `k${k}` : null;
}

// Counts /write?k= answers.  Registered before express-session, whose own
// res.end wrapper calls this one only after the store's set() is done.
function countWrites(req, res, next) {
  const key = keyOf(req);
  if (key === 'n') return next();
  if (key === null) return res.status(400).json({ error: 'k must be a small integer' });
  writes.inFlight += 1;
  const end = res.end;
  let ended = false;
  res.end = function countedEnd(...args) {
    if (!ended) {
      ended = true;
      writes.inFlight -= 1;
      if (res.statusCode === 200) {
        writes.acked[key] = (writes.acked[key] || 0) + 1;
      }
    }
    return end.apply(this, args);
  };
  return next();
}

// /tally waits (up to 10 s) until no /write is in flight before the session loads.
function drained(req, res, next) {
  const start = Date.now();
  (function wait() {
    if (writes.inFlight === 0) return next();
    if (Date.now() - start > 10000) {
      return res.status(503).json({ error: 'writes still in flight after 10 s' });
    }
    return setTimeout(wait, 5);
  })();
}

if (mode === 'bare') {
  let count = 0;
  app.get('/read', (req, res) => res.json({ n: 0 }));
  app.get('/write', (req, res) => { count += 1; res.json({ n: count }); });
} else if (mode === 'session') {
  const session = require('express-session');
  const MySQLStore = require('express-mysql-session')(session);
  const store = new MySQLStore({
    host: process.env.SESSION_HOST,
    port: Number(process.env.SESSION_PORT || 3306),
    user: process.env.SESSION_USER,
    password: process.env.SESSION_PASSWORD,
    database: process.env.SESSION_DATABASE,
    createDatabaseTable: true,
    clearExpired: false,
    connectionLimit: 10,
    schema: { tableName: process.env.BENCH_TABLE || 'bench_express_sessions' },
  });
  // express-mysql-session creates its table in the background: a request
  // served before then has its save fail after the answer went out (a 200
  // with a cookie for a session that was never stored, the bench's first
  // /seed found so), so the port opens only once the table is there.
  ready = store.onReady();
  app.use('/write', countWrites);
  app.use('/tally', drained);
  app.use(session({
    secret: process.env.SESSION_SECRET,
    store,
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, sameSite: 'lax', maxAge: 2628000 * 1000 },
  }));
  app.get('/seed', (req, res) => {
    req.session.n = 0;
    req.session.user = { name: 'bench', roles: ['reader', 'writer'] };
    res.json({ n: 0 });
  });
  app.get('/read', (req, res) => res.json({ n: req.session.n || 0 }));
  app.get('/write', (req, res) => {
    const key = keyOf(req);
    req.session[key] = (req.session[key] || 0) + 1;
    res.json({ [key]: req.session[key] });
  });
  app.get('/tally', (req, res) => {
    const held = {};
    for (const [k, v] of Object.entries(req.session)) {
      if (/^k[0-9]+$/.test(k)) held[k] = v;
    }
    // seeded: the session /seed stored is there (bench/servers.py check()).
    res.json({ held, acked: writes.acked, seeded: req.session.user !== undefined });
  });
} else {
  console.error('usage: node app.js bare|session PORT');
  process.exit(2);
}

let server = null;
process.on('SIGTERM', () => (server ? server.close(() => process.exit(0)) : process.exit(0)));
ready.then(
  () => {
    server = app.listen(Number(port), '127.0.0.1', () => console.log(`ready ${port}`));
  },
  (err) => {
    console.error(`the session store did not start: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  },
);
