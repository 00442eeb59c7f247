// B2 (API-posted part) load for Threadline, modelled on
// shared/bench-kit/chat_load.js. M agent sockets on /ws/agent (one token per
// agent, each waits for its "ready" frame); messages POSTed over the REST API
// (POST /api/v1/conversations/{id}/messages) through K keep-alive HTTP
// connections, each to a random one of the seeded conversations, at an
// aggregate open-loop rate stepped up until p99 > 1 s or loss > 1 % (the
// kit's stop rule). Every agent must receive every message.
// Text: "<step>|<n>|<send time ms>|<padding>"; latency = agent receive time -
// send time (same process clock); ack = the POST's 201 response.
// A step's messages are counted by their tag after the step has drained, so
// a late delivery is never counted in the next step.
// Prints `STEP_START <rate>` / `STEP_END <rate>` around each step (the caller
// may profile the server then) and a final `RESULT {json}` line.
'use strict';
const WebSocket = require('ws');
const http = require('http');
const fs = require('fs');
const { performance } = require('perf_hooks');
const A = {};
for (const a of process.argv.slice(2)) { const m = a.match(/^--([^=]+)(?:=(.*))?$/); if (m) A[m[1]] = m[2] ?? '1'; }
const BASE = new URL(A.base || 'http://127.0.0.1:8000');
const WS_URL = `ws://${BASE.host}/ws/agent`;
const SEED = JSON.parse(fs.readFileSync(A.seed, 'utf8'));
const M = +(A.m || SEED.agent_tokens.length), K = +(A.k || 50);
const CONVS = SEED.conversation_ids, POSTER = SEED.poster_token;
const RATES = (A.rates || '100,200,400,700,1000,1500,2000').split(',').map(Number), STEP_S = +(A.step_s || 4);
const DRAIN_S = +(A.drain_s || 5), pad = 'x'.repeat(+(A.pad || 100));
setTimeout(() => { console.log('RESULT ' + JSON.stringify({ error: 'hard timeout', steps })); process.exit(3); }, +(A.hard_s || 200) * 1000);
const TEXT_KEY = Buffer.from('"text":"');
const steps = [];
const sent = {}, got = {}, lat = {}, ack = {}, ok = {}, failed = {}, codes = {};
let answered = 0, issued = 0, closed = 0;
const sleep = (ms) => new Promise(r => setTimeout(r, ms));
function pct(arr) {
  if (!arr.length) return {};
  const f = Float64Array.from(arr).sort(); const p = (q) => +f[Math.min(f.length - 1, Math.floor(q * f.length))].toFixed(3);
  return { n: f.length, p50: p(0.5), p90: p(0.9), p99: p(0.99), max: +f[f.length - 1].toFixed(3) };
}
function phase(ph) { sent[ph] = 0; got[ph] = 0; lat[ph] = []; ack[ph] = []; ok[ph] = 0; failed[ph] = 0; }

const agent = new http.Agent({ keepAlive: true, maxSockets: K });
function post(ph) {
  const n = sent[ph]++; issued++;
  const conv = CONVS[(Math.random() * CONVS.length) | 0];
  const t = performance.now();
  const body = JSON.stringify({ text: `${ph}|${n}|${t}|${pad}` });
  const req = http.request({ host: BASE.hostname, port: BASE.port, path: `/api/v1/conversations/${conv}/messages`, method: 'POST', agent,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: 'Bearer ' + POSTER } },
  (res) => {
    res.resume();
    res.on('end', () => {
      answered++; ack[ph].push(performance.now() - t);
      if (res.statusCode === 201) ok[ph]++; else { failed[ph]++; codes[res.statusCode] = (codes[res.statusCode] || 0) + 1; }
    });
  });
  req.on('error', (e) => { answered++; failed[ph]++; codes[e.code || 'error'] = (codes[e.code || 'error'] || 0) + 1; });
  req.end(body);
}
function onAgentMsg(buf) {
  const k = buf.indexOf(TEXT_KEY); if (k < 0) return;
  const i = k + TEXT_KEY.length, b1 = buf.indexOf(124, i); if (b1 < 0) return;
  const ph = buf.latin1Slice(i, b1); if (!(ph in got)) return;
  const b2 = buf.indexOf(124, b1 + 1), b3 = buf.indexOf(124, b2 + 1);
  lat[ph].push(performance.now() - +buf.latin1Slice(b2 + 1, b3)); got[ph]++;
}
function connect(token) {
  return new Promise((res, rej) => {
    const ws = new WebSocket(WS_URL, { perMessageDeflate: false, skipUTF8Validation: true, headers: { authorization: 'Bearer ' + token } });
    let ready = false;
    ws.on('message', (buf) => {
      if (!ready) { if (buf.indexOf('"ready"') >= 0) { ready = true; res(ws); } return; }
      onAgentMsg(buf);
    });
    ws.on('close', () => { if (ready) closed++; });
    ws.once('error', (e) => { if (!ready) rej(e); });
  });
}
async function openLoop(ph, rate, secs) {
  const t0 = performance.now(), end = t0 + secs * 1000;
  while (performance.now() < end) {
    const due = Math.floor(rate * (performance.now() - t0) / 1000) + 1;
    while (sent[ph] < due) post(ph);
    await sleep(2);
  }
}
async function drain(ph) {
  const end = performance.now() + DRAIN_S * 1000;
  while (performance.now() < end && (answered < issued || got[ph] < ok[ph] * M)) await sleep(10);
}

(async () => {
  const tc = performance.now();
  const agents = [];
  for (let i = 0; i < M; i++) agents.push(await connect(SEED.agent_tokens[i % SEED.agent_tokens.length]));
  const connect_s = (performance.now() - tc) / 1000;
  phase('w'); await openLoop('w', 50, 1); await drain('w');
  await sleep(300);
  for (let si = 0; si < RATES.length; si++) {
    const R = RATES[si], ph = 's' + si; phase(ph);
    console.log('STEP_START ' + R);
    await openLoop(ph, R, STEP_S);
    console.log('STEP_END ' + R);
    await drain(ph);
    const expected = sent[ph] * M;
    const st = { rate: R, achieved_send_per_s: Math.round(sent[ph] / STEP_S), sent: sent[ph], posted_ok: ok[ph], post_failed: failed[ph],
      expected_deliveries: expected, delivered: got[ph], loss_pct: +(100 * (1 - got[ph] / expected)).toFixed(2),
      deliv_per_s: Math.round(got[ph] / STEP_S), ...pct(lat[ph]), ack_ms: pct(ack[ph]) };
    steps.push(st); console.error(JSON.stringify(st));
    if (!(st.p99 <= 1000) || st.loss_pct > 1) break;
    await sleep(300);
  }
  console.log('RESULT ' + JSON.stringify({ n_conversations: CONVS.length, m: M, k: K, connect_s, closed_by_server: closed, post_error_codes: codes, steps }));
  process.exit(0);
})().catch(e => { console.log('RESULT ' + JSON.stringify({ error: String(e), steps })); process.exit(2); });
