// The Node peer for bench/run.py: `node app.js bare|session PORT`.
// The same routes as bench/server.py: /read (reads the session key n),
// /write (increments it), /seed (starts a session with n = 0).
// Settings: SESSION_HOST, SESSION_PORT, SESSION_USER, SESSION_PASSWORD,
// SESSION_DATABASE, SESSION_SECRET, BENCH_TABLE (the store's table).
'use strict';
const express = require('express');

const [mode, port] = process.argv.slice(2);
const app = express();
app.set('etag', false);
app.set('x-powered-by', false);

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
    req.session.n = (req.session.n || 0) + 1;
    res.json({ n: req.session.n });
  });
} else {
  console.error('usage: node app.js bare|session PORT');
  process.exit(2);
}

const server = app.listen(Number(port), '127.0.0.1', () => console.log(`ready ${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
