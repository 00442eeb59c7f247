// B1 fan-out load for Threadline, modelled on shared/bench-kit/client_node.js.
// N agent sockets on /ws/agent (bearer token, each waits for its "ready"
// frame) + one publisher that POSTs messages to one conversation over the
// REST API (keep-alive HTTP). Every socket receives every message as a
// `message.created` frame; the message text is "<phase>|<id>|<t_send_ms>|<pad>",
// so send and receive times share one clock (performance.now()).
// Phases:
//   ramp  open loop at increasing delivery rates (deliveries/s = msgs/s x N);
//         each step's rate = its deliveries / (last delivery - step start);
//         stops at the first step that falls behind (< 85 % of offered),
//         has p99 > 1 s, loses anything or has a failed POST.
//   sat   closed loop, as the kit's client: ceil(outstanding / N) messages in
//         flight, a new one POSTed when the last socket got one -> max rate.
//   half  open loop at 50 % of the closed-loop rate: latency p50/p90/p99.
// Latency is recorded on `sampled` sockets (evenly spread), as in the kit.
// Prints CONNECTED <n>, waits for GO on stdin (--waitgo=1) so the caller can
// read the server's RSS, then SAT_START/SAT_END around the closed loop,
// HALF_START/HALF_END around the half-load phase, and a
// final `RESULT {json}` line.
'use strict';
const WebSocket = require('ws');
const http = require('http');
const { performance } = require('perf_hooks');
const readline = require('readline');
const A = {};
for (const a of process.argv.slice(2)) { const m = a.match(/^--([^=]+)(?:=(.*))?$/); if (m) A[m[1]] = m[2] ?? '1'; }
const BASE = new URL(A.base || 'http://127.0.0.1:8000');
const WS_URL = `ws://${BASE.host}/ws/agent`;
const TOKEN = A.token, PUB_TOKEN = A.pub_token || A.token, CONV = +A.conv;
const N = +(A.n || 100), CONC = +(A.conc || 50), PAD = +(A.pad || 100);
const RAMP = (A.ramp || '5000,10000,20000,40000,60000,80000,100000').split(',').filter(Boolean).map(Number);
const STEP_S = +(A.step_s || 4), SAT_S = +(A.sat_s || 8), HALF_S = +(A.half_s || 6);
const OUTSTANDING = +(A.outstanding || 20000), HTTP_CONNS = +(A.http_conns || 32);
const DEFLATE = A.deflate === '1', WAITGO = A.waitgo === '1', HARD = +(A.hard_s || 170);
if (!TOKEN || !CONV) { console.error('need --token and --conv'); process.exit(2); }
setTimeout(() => { console.log('RESULT ' + JSON.stringify({ error: 'hard timeout', partial: R })); process.exit(3); }, HARD * 1000);

const pad = 'x'.repeat(PAD);
const TEXT_KEY = Buffer.from('"text":"');
const SAMPLE_EVERY = Math.max(1, Math.floor(N / (+(A.sampled || 100))));
const sent = {}, deliv = {}, lat = {}, lastAt = {}, postLat = {};
const cnt = new Map();
const post = { ok: 0, failed: 0, codes: {} };
let nextId = 0, closed = 0, connErrors = 0, otherFrames = 0, satOpen = false, satEnd = 0;
const R = { n: N };
const sleep = (ms) => new Promise(r => setTimeout(r, ms));
function phase(ph) { if (!(ph in sent)) { sent[ph] = 0; deliv[ph] = 0; lat[ph] = []; postLat[ph] = []; lastAt[ph] = 0; } }
function pct(arr, ps = [50, 90, 99]) {
  if (!arr.length) return {};
  const f = Float64Array.from(arr).sort(); const o = { n: f.length };
  for (const p of ps) o['p' + p] = +f[Math.min(f.length - 1, Math.floor(p / 100 * f.length))].toFixed(3);
  o.max = +f[f.length - 1].toFixed(3); return o;
}

// --- publisher: POST /api/v1/conversations/{id}/messages ---------------------
const agent = new http.Agent({ keepAlive: true, maxSockets: HTTP_CONNS });
const PATH = `/api/v1/conversations/${CONV}/messages`;
function sendMsg(ph) {
  const id = nextId++; sent[ph]++;
  const t = performance.now();
  const body = JSON.stringify({ text: `${ph}|${id}|${t}|${pad}` });
  const req = http.request({ host: BASE.hostname, port: BASE.port, path: PATH, method: 'POST', agent,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: 'Bearer ' + PUB_TOKEN } },
  (res) => {
    res.resume();
    res.on('end', () => {
      postLat[ph].push(performance.now() - t);
      if (res.statusCode === 201) post.ok++;
      else { post.failed++; post.codes[res.statusCode] = (post.codes[res.statusCode] || 0) + 1; if (ph === 's') refill(); }
    });
  });
  req.on('error', (e) => { post.failed++; post.codes[e.code || 'error'] = (post.codes[e.code || 'error'] || 0) + 1; if (ph === 's') refill(); });
  req.end(body);
}
function refill() { if (satOpen && performance.now() < satEnd) sendMsg('s'); }

// --- subscribers ------------------------------------------------------------
function makeOnMsg(sample, onReady) {
  return function onMsg(buf) {
    const k = buf.indexOf(TEXT_KEY);
    if (k < 0) { if (onReady && buf.indexOf('"ready"') >= 0) { onReady(); onReady = null; } else otherFrames++; return; }
    let i = k + TEXT_KEY.length;
    const b1 = buf.indexOf(124, i); if (b1 < 0) { otherFrames++; return; }
    const ph = buf.latin1Slice(i, b1);
    if (!(ph in deliv)) { otherFrames++; return; }
    let id = 0, c; i = b1 + 1;
    while ((c = buf[i]) !== 124) { id = id * 10 + (c - 48); i++; }
    deliv[ph]++;
    const now = performance.now();
    lastAt[ph] = now;
    if (sample) { const j = buf.indexOf(124, i + 1); lat[ph].push(now - +buf.latin1Slice(i + 1, j)); }
    if (ph === 's') {
      const n = (cnt.get(id) || 0) + 1;
      if (n >= N) { cnt.delete(id); refill(); } else cnt.set(id, n);
    }
  };
}
let connIdx = 0;
const hs = [];
function connectOne(tries = 6) {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const ws = new WebSocket(WS_URL, { perMessageDeflate: DEFLATE, skipUTF8Validation: true, headers: { authorization: 'Bearer ' + TOKEN } });
    let ready = false;
    const timer = setTimeout(() => { if (!ready) { ws.terminate(); } }, 30000);
    ws.on('message', makeOnMsg(connIdx++ % SAMPLE_EVERY === 0, () => { ready = true; clearTimeout(timer); hs.push(performance.now() - t0); res(ws); }));
    ws.on('close', () => { if (ready) closed++; });
    ws.once('error', (e) => {
      connErrors++; clearTimeout(timer);
      if (!ready) { if (tries > 0) setTimeout(() => connectOne(tries - 1).then(res, rej), 200); else rej(e); }
    });
  });
}
async function openLoop(ph, rate, secs) { // floor(rate * elapsed) messages, checked every 2 ms
  const t0 = performance.now(), end = t0 + secs * 1000;
  while (performance.now() < end) {
    const due = Math.floor(rate * (performance.now() - t0) / 1000) + 1;
    while (sent[ph] < due) sendMsg(ph);
    await sleep(2);
  }
}
async function drain(ph, maxMs) { // until every socket got every message of `ph`
  const end = performance.now() + maxMs;
  while (performance.now() < end && (deliv[ph] < sent[ph] * N || post.ok + post.failed < nextId)) await sleep(20);
}
function summary() {
  Object.assign(R, { conn_errors: connErrors, closed_by_server: closed, other_frames: otherFrames,
    handshake_ms: pct(hs, [50, 99]), post: { ...post } });
  return R;
}

(async () => {
  const tc = performance.now();
  const subs = []; let k = 0;
  const worker = async () => { while (k < N) { k++; subs.push(await connectOne()); } };
  await Promise.all(Array.from({ length: Math.min(CONC, N) }, worker));
  R.connect_s = +((performance.now() - tc) / 1000).toFixed(3);
  R.connect_per_s = +(N / R.connect_s).toFixed(1);
  console.log('CONNECTED ' + subs.length);
  if (WAITGO) {
    const rl = readline.createInterface({ input: process.stdin });
    const line = await new Promise(r => rl.once('line', r)); rl.close();
    if (line.trim() === 'QUIT') { console.log('RESULT ' + JSON.stringify(summary())); process.exit(0); }
  }
  await sleep(300);
  // warm-up: a few messages so first-use costs are out of the way
  phase('w'); await openLoop('w', Math.max(2, 2000 / N), 1); await drain('w', 3000);

  // ramp: increasing open-loop rates
  R.ramp = []; let best = 0;
  for (let si = 0; si < RAMP.length; si++) {
    const ph = 'r' + si, offered = RAMP[si], rate = offered / N; phase(ph);
    const failedBefore = post.failed, t0 = performance.now();
    await openLoop(ph, rate, STEP_S);
    await drain(ph, 2 * STEP_S * 1000 + 2000);
    const span = Math.max(STEP_S * 1000, lastAt[ph] - t0) / 1000;
    const st = { offered_deliv_per_s: offered, msgs_per_s: +rate.toFixed(2), sent: sent[ph], expected: sent[ph] * N,
      delivered: deliv[ph], deliveries_per_s: Math.round(deliv[ph] / span), post_failed: post.failed - failedBefore,
      ...pct(lat[ph]), post_ms: pct(postLat[ph], [50, 99]) };
    R.ramp.push(st); console.error('ramp ' + JSON.stringify(st));
    best = Math.max(best, st.deliveries_per_s);
    if (st.deliveries_per_s < 0.85 * offered || st.p99 > 1000 || st.delivered < st.expected || st.post_failed) break;
    await sleep(500);
  }
  R.ramp_best_deliveries_per_s = best;

  // closed loop saturation, as the kit's client
  phase('s');
  const W = Math.max(1, Math.ceil(OUTSTANDING / N));
  console.log('SAT_START'); const ts = performance.now(); satEnd = ts + SAT_S * 1000; satOpen = true;
  for (let i = 0; i < W; i++) sendMsg('s');
  await sleep(SAT_S * 1000);
  const dSat = deliv.s, te = performance.now(); console.log('SAT_END');
  satOpen = false;
  R.sat = { window_messages: W, deliveries_per_s: Math.round(dSat / ((te - ts) / 1000)), msgs_per_s: +((dSat / N) / ((te - ts) / 1000)).toFixed(2),
    ...pct(lat.s, [50, 99]), post_ms: pct(postLat.s, [50, 99]) };
  await drain('s', 10000);
  R.sat.undelivered_at_end = sent.s * N - deliv.s;
  await sleep(500);

  // half load: 50 % of the closed-loop rate
  phase('h');
  const hr = 0.5 * R.sat.deliveries_per_s / N;
  R.half = { target_deliv_per_s: Math.round(hr * N), msgs_per_s: +hr.toFixed(2) };
  console.log('HALF_START');
  await openLoop('h', hr, HALF_S);
  await drain('h', 10000);
  console.log('HALF_END');
  Object.assign(R.half, { sent: sent.h, delivered: deliv.h, expected: sent.h * N, ...pct(lat.h), post_ms: pct(postLat.h, [50, 99]) });
  console.log('RESULT ' + JSON.stringify(summary()));
  process.exit(0);
})().catch(e => { console.log('RESULT ' + JSON.stringify({ error: String(e), partial: summary() })); process.exit(2); });
