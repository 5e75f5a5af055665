// The bfrope page: controls, visualisations and live conformance, all through the wasm package.
import init, { backend_info, build_table, rope, rope_bf16, run_conformance, precision_maps } from './pkg/bfrope.js';

const $ = (id) => document.getElementById(id);

// bf16 <-> f32 through bit patterns.
const f32buf = new Float32Array(1), u32buf = new Uint32Array(f32buf.buffer);
function toBf16(v) { // round to nearest even
  f32buf[0] = v; const b = u32buf[0];
  if ((b & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return ((b + 0x7fff + ((b >> 16) & 1)) >>> 16) & 0xffff;
}
function fromBf16(h) { u32buf[0] = h << 16; return f32buf[0]; }

function params() {
  const num = (id, lo, hi, dflt) => { const v = Number($(id).value); return Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : dflt; };
  return {
    base: num('base', 1e-6, 1e12, 10000),
    d: Number($('head_dim').value),
    seq: Math.round(num('seq', 2, 16384, 1024)),
    offset: Math.round(num('offset', 0, 2 ** 52, 0)),
    mode: $('mode').value,
  };
}

// Colour maps.
function diverging(t) { // t in [-1, 1]: blue - white - red
  const a = Math.max(-1, Math.min(1, t));
  return a < 0 ? [255 * (1 + a), 255 * (1 + a * 0.6), 255] : [255, 255 * (1 - a * 0.7), 255 * (1 - a)];
}
function heat(t) { // t in [0, 1]: dark blue -> teal -> yellow -> red
  const s = [[12, 18, 48], [24, 110, 140], [120, 190, 90], [250, 220, 60], [220, 40, 30]];
  const x = Math.max(0, Math.min(1, t)) * (s.length - 1), i = Math.min(s.length - 2, Math.floor(x)), f = x - i;
  return s[i].map((c, k) => c + (s[i + 1][k] - c) * f);
}

function drawGrid(canvas, rows, cols, value, colour) {
  const tmp = document.createElement('canvas'); tmp.width = cols; tmp.height = rows;
  const tctx = tmp.getContext('2d'), img = tctx.createImageData(cols, rows);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
    const [R, G, B] = colour(value(r, c)), k = 4 * (r * cols + c);
    img.data[k] = R; img.data[k + 1] = G; img.data[k + 2] = B; img.data[k + 3] = 255;
  }
  tctx.putImageData(img, 0, 0);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}

function axes(ctx, w, h, pad) {
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, w, h);
  ctx.strokeStyle = '#9aa4b1'; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(pad.l, pad.t); ctx.lineTo(pad.l, h - pad.b); ctx.lineTo(w - pad.r, h - pad.b); ctx.stroke();
  ctx.fillStyle = '#5b6573'; ctx.font = '11px system-ui, sans-serif';
}

// ---- table heatmap and wavelengths ------------------------------------------------------------
function drawTable(p, table) {
  const pairs = p.d / 2;
  drawGrid($('heatmap'), table.rows, pairs, (r, c) => table.cos[r * pairs + c], diverging);
  const cv = $('wavelength'), ctx = cv.getContext('2d'), W = cv.width, H = cv.height;
  const pad = { l: 44, r: 10, t: 10, b: 28 };
  axes(ctx, W, H, pad);
  const lam = Array.from({ length: pairs }, (_, i) => 2 * Math.PI * Math.pow(p.base, (2 * i) / p.d));
  const ctxLen = p.seq + p.offset;
  const lo = Math.log10(Math.min(lam[0], 1)), hi = Math.log10(Math.max(lam[pairs - 1], ctxLen) * 2);
  const y = (v) => H - pad.b - ((Math.log10(v) - lo) / (hi - lo)) * (H - pad.t - pad.b);
  const x = (i) => pad.l + ((i + 0.5) / pairs) * (W - pad.l - pad.r);
  for (let e = Math.ceil(lo); e <= hi; e++) { ctx.fillText(`1e${e}`, 4, y(10 ** e) + 4); ctx.strokeStyle = '#eef0f3'; ctx.beginPath(); ctx.moveTo(pad.l, y(10 ** e)); ctx.lineTo(W - pad.r, y(10 ** e)); ctx.stroke(); }
  for (let i = 0; i < pairs; i++) {
    ctx.fillStyle = lam[i] > ctxLen ? '#d98a2b' : '#2f6fd6';
    ctx.fillRect(x(i) - 2, y(lam[i]) - 2, 4, 4);
  }
  ctx.strokeStyle = '#b3261e'; ctx.setLineDash([5, 4]); ctx.beginPath(); ctx.moveTo(pad.l, y(ctxLen)); ctx.lineTo(W - pad.r, y(ctxLen)); ctx.stroke(); ctx.setLineDash([]);
  ctx.fillStyle = '#b3261e'; ctx.fillText(`context ${ctxLen}`, W - pad.r - 90, y(ctxLen) - 5);
  ctx.fillStyle = '#5b6573'; ctx.fillText('pair i →', W / 2 - 20, H - 8);
  const beyond = lam.filter((l) => l > ctxLen).length;
  ctx.fillText(`${beyond} of ${pairs} pairs never complete a turn`, pad.l + 6, pad.t + 12);
}

// ---- phasors -----------------------------------------------------------------------------------
// rope(x, options) with the page's pairing and rotary_dim: one vector at positions offset..offset+S.
let phasor = null, playing = true, pos = 0;
async function computePhasors(p, table, gen) {
  const S = table.rows, d = p.d;
  const rotation = $('rotation').value, R = Math.max(2, 2 * Math.round((d * Number($('rotary_dim').value)) / 2));
  const pairs = R / 2;
  const pair = (i) => (rotation === 'half' ? [i, i + pairs] : [2 * i, 2 * i + 1]);
  const v = new Uint16Array(d);
  for (let j = R; j < d; j++) v[j] = toBf16(0.25 + 0.01 * j); // passes through unrotated
  for (let i = 0; i < pairs; i++) { const [a, b] = pair(i); v[a] = toBf16(0.55 + 0.45 * Math.cos(i * 1.7)); v[b] = toBf16(0.3 * Math.sin(i * 2.3)); }
  const x = new Uint16Array(S * d);
  for (let s = 0; s < S; s++) x.set(v, s * d);
  const y = await rope(x, {
    dims: [1, S, 1, d], rotation, rotaryDim: R, positions: p.offset,
    table: { base: p.base, angles: p.mode },
  });
  if (gen !== generation) return;
  let unchanged = true;
  for (let s = 0; s < S && unchanged; s++) for (let j = R; j < d; j++) if (y[s * d + j] !== x[s * d + j]) { unchanged = false; break; }
  const picks = Array.from({ length: Math.min(8, pairs) }, (_, k) => Math.round((k * (pairs - 1)) / Math.max(1, Math.min(8, pairs) - 1)));
  phasor = { y, S, d, picks, offset: p.offset, pair };
  $('pos').max = String(S - 1);
  if (pos >= S) pos = 0;
  const info = $('pairs-info');
  info.dataset.rotation = rotation; info.dataset.rotaryDim = String(R);
  info.dataset.passthrough = R === d ? 'none' : unchanged ? 'unchanged' : 'changed';
  info.textContent = `${rotation === 'half' ? 'half-split' : 'interleaved'} pairs, rotary_dim ${R} of head_dim ${d}: ${pairs} pairs rotate` +
    (R === d ? '.' : `; dims ${R}…${d - 1} ${unchanged ? 'came back bit for bit unchanged' : 'CHANGED (a bug)'}.`);
  drawPhasors();
}
function drawPhasors() {
  if (!phasor) return;
  const cv = $('phasors'), ctx = cv.getContext('2d'), W = cv.width, H = cv.height;
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, W, H);
  const n = phasor.picks.length, cw = W / n, R = Math.min(cw, H - 40) / 2 - 8;
  phasor.picks.forEach((i, k) => {
    const cx = cw * k + cw / 2, cy = (H - 30) / 2 + 6;
    ctx.strokeStyle = '#dfe3e8'; ctx.beginPath(); ctx.arc(cx, cy, R, 0, 2 * Math.PI); ctx.stroke();
    ctx.strokeStyle = 'rgba(47,111,214,0.25)'; ctx.beginPath();
    const from = Math.max(0, pos - 64);
    for (let s = from; s <= pos; s++) {
      const [e0, e1] = phasor.pair(i), a = fromBf16(phasor.y[s * phasor.d + e0]), b = fromBf16(phasor.y[s * phasor.d + e1]);
      const px = cx + a * R, py = cy - b * R;
      s === from ? ctx.moveTo(px, py) : ctx.lineTo(px, py);
    }
    ctx.stroke();
    const [e0, e1] = phasor.pair(i), a = fromBf16(phasor.y[pos * phasor.d + e0]), b = fromBf16(phasor.y[pos * phasor.d + e1]);
    ctx.strokeStyle = '#1d232b'; ctx.lineWidth = 2; ctx.beginPath(); ctx.moveTo(cx, cy); ctx.lineTo(cx + a * R, cy - b * R); ctx.stroke(); ctx.lineWidth = 1;
    ctx.fillStyle = '#5b6573'; ctx.font = '11px system-ui, sans-serif'; ctx.textAlign = 'center';
    ctx.fillText(`pair ${i}`, cx, H - 8);
  });
  ctx.textAlign = 'left';
  $('pos').value = String(pos); $('posval').textContent = `${pos + phasor.offset}`;
}
function tick() {
  if (playing && phasor) { pos = (pos + 1) % phasor.S; drawPhasors(); }
  requestAnimationFrame(tick);
}

// ---- q·k vs distance ---------------------------------------------------------------------------
async function computeQk(p, table, gen) {
  const S = table.rows, d = p.d;
  // Heads: 0 = ones (q and k), 1 = random q, 2 = random k; every token holds the same vectors.
  const rnd = (seed) => { let s = seed; return () => { s = (s * 1103515245 + 12345) >>> 0; return (s / 2 ** 32) * 2 - 1; }; };
  const rq = rnd(7), rk = rnd(11);
  const tok = new Uint16Array(3 * d);
  for (let j = 0; j < d; j++) { tok[j] = toBf16(1); tok[d + j] = toBf16(rq()); tok[2 * d + j] = toBf16(rk()); }
  const x = new Uint16Array(S * 3 * d);
  for (let s = 0; s < S; s++) x.set(tok, s * 3 * d);
  const y = await rope_bf16(x, [1, S, 3, d], table.cos, table.sin, false);
  if (gen !== generation) return;
  const dot = (a, b) => { let t = 0; for (let j = 0; j < d; j++) t += fromBf16(y[a + j]) * fromBf16(y[b + j]); return t; };
  const ones = [], rand = [];
  for (let delta = 0; delta < S; delta++) {
    ones.push(dot(0, delta * 3 * d) / d);
    rand.push(dot(d, delta * 3 * d + 2 * d) / d);
  }
  const cv = $('qk'), ctx = cv.getContext('2d'), W = cv.width, H = cv.height, pad = { l: 40, r: 10, t: 10, b: 26 };
  axes(ctx, W, H, pad);
  const all = ones.concat(rand), lo = Math.min(...all, -0.1), hi = Math.max(...all, 1);
  const X = (i) => pad.l + (i / (S - 1)) * (W - pad.l - pad.r), Y = (v) => H - pad.b - ((v - lo) / (hi - lo)) * (H - pad.t - pad.b);
  ctx.strokeStyle = '#eef0f3'; ctx.beginPath(); ctx.moveTo(pad.l, Y(0)); ctx.lineTo(W - pad.r, Y(0)); ctx.stroke();
  for (const [series, colour] of [[rand, '#d98a2b'], [ones, '#2f6fd6']]) {
    ctx.strokeStyle = colour; ctx.beginPath();
    series.forEach((v, i) => (i ? ctx.lineTo(X(i), Y(v)) : ctx.moveTo(X(i), Y(v))));
    ctx.stroke();
  }
  ctx.fillStyle = '#5b6573';
  ctx.fillText(hi.toFixed(2), 4, Y(hi) + 8); ctx.fillText('0', 24, Y(0) + 4); ctx.fillText(lo.toFixed(2), 4, Y(lo));
  ctx.fillText(`distance Δ → ${S - 1}   (q at position ${p.offset})`, W / 2 - 80, H - 8);
}

// ---- precision maps ----------------------------------------------------------------------------
const ERR_MAX = 2; // ulps at the top of the colour scale
async function computePrecision(p, gen) {
  const rows = 48, long = 2 ** 20 + p.offset;
  for (const [which, first] of [['short', p.offset], ['long', long]]) {
    const m = await precision_maps(p.base, p.d, first, rows, p.mode, 8, 1);
    if (gen !== generation) return;
    for (const method of ['kernel', 'f32', 'bf16']) {
      const cv = $(`err-${method}-${which}`);
      drawGrid(cv, m.rows, m.pairs, (r, c) => m[method][r * m.pairs + c] / ERR_MAX, heat);
      cv.nextElementSibling.querySelector('span').textContent = `(positions ${first}…${first + rows - 1}): max ${m.max[method].toFixed(3)} ulp`;
    }
  }
  const sc = $('err-scale'), ctx = sc.getContext('2d');
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, sc.width, sc.height);
  for (let x = 0; x < 300; x++) { const [r, g, b] = heat(x / 299); ctx.fillStyle = `rgb(${r},${g},${b})`; ctx.fillRect(x, 0, 1, 14); }
  ctx.fillStyle = '#5b6573'; ctx.font = '11px system-ui, sans-serif';
  ctx.fillText('0', 0, 26); ctx.fillText('0.5', 70, 26); ctx.fillText('1', 146, 26); ctx.fillText(`≥ ${ERR_MAX} ulp`, 280, 26);
}

// ---- conformance -------------------------------------------------------------------------------
async function conformance(full) {
  const el = $('selftest');
  el.dataset.status = 'running';
  el.textContent = `running the ${full ? 'full' : 'quick'} suite…`;
  $('full').disabled = true;
  try {
    const r = await run_conformance(full);
    const pass = r.mismatches === 0 && r.fingerprintMismatches === 0 && r.checked > 0;
    el.dataset.checked = String(r.checked);
    el.dataset.mismatches = String(r.mismatches);
    el.dataset.fingerprintMismatches = String(r.fingerprintMismatches);
    el.dataset.backend = r.backend;
    el.dataset.ms = r.ms.toFixed(1);
    el.textContent = [
      `${pass ? 'PASS' : 'FAIL'} (${full ? 'full' : 'quick'} suite, ${r.cases} cases × 2 directions): ${r.checked.toLocaleString('en')} outputs checked, ${r.mismatches} mismatching pairs` +
        (r.backend === 'webgpu' ? ' against the CPU path' : ' (the CPU path is this backend)'),
      `CPU path fingerprints: ${r.fingerprints - r.fingerprintMismatches} of ${r.fingerprints} match the native build's`,
      `backend: ${r.backend} — ${r.backend === 'webgpu' && adapterText ? adapterText : r.adapter}`,
      `time: ${r.ms.toFixed(1)} ms in all, ${r.computeMs.toFixed(1)} ms in rotations` +
        (r.gpuMs != null ? `, ${r.gpuMs.toFixed(3)} ms GPU time for the special-value pass (timestamp queries)` : r.backend === 'webgpu' ? ' (no timestamp queries on this adapter)' : ''),
      r.firstMismatch ? `first mismatch: ${r.firstMismatch}` : '',
    ].filter(Boolean).join('\n');
    el.dataset.status = pass ? 'pass' : 'fail';
  } catch (e) {
    el.textContent = `the suite could not run: ${e}`;
    el.dataset.status = 'fail';
  } finally {
    $('full').disabled = false;
  }
}

// ---- wiring ------------------------------------------------------------------------------------
let generation = 0, backendReady = null;
async function update() {
  const gen = ++generation, p = params();
  let table;
  try {
    table = build_table(p.base, p.d, p.offset, p.seq, p.mode);
  } catch (e) { $('backend').textContent = `invalid parameters: ${e}`; return; }
  drawTable(p, table); // synchronous: the page is usable from here
  await backendReady;
  if (gen !== generation) return;
  try {
    await computePhasors(p, table, gen);
    await computeQk(p, table, gen);
    await computePrecision(p, gen);
  } catch (e) { console.error(e); $('backend').textContent += ` — error: ${e}`; }
  if (gen === generation) document.body.dataset.drawn = 'true';
}

// Browsers fill wgpu's adapter name sparsely; GPUAdapterInfo says more (vendor, architecture).
let adapterText = '';
async function browserAdapterInfo(info) {
  try {
    const a = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
    const i = a && (a.info ?? (a.requestAdapterInfo ? await a.requestAdapterInfo() : null));
    const parts = i ? [i.vendor, i.architecture, i.device, i.description].filter(Boolean) : [];
    if (parts.length) return `${parts.join(' · ')}${i.isFallbackAdapter ? ' (fallback adapter)' : ''} [wgpu: ${info.adapter}]`;
  } catch (e) { /* keep wgpu's description */ }
  return info.adapter;
}

async function main() {
  await init();
  backendReady = backend_info().then(async (info) => {
    const b = $('backend');
    if (info.backend === 'webgpu') {
      adapterText = await browserAdapterInfo(info);
      b.textContent = `WebGPU: ${adapterText}${info.timestamps ? ' · timestamp queries available' : ''}`;
    } else {
      b.classList.add('cpu');
      b.textContent = `No WebGPU here — ${info.reason}. Everything on this page runs on the CPU path compiled to WebAssembly (the same bits, more slowly).`;
    }
    return info;
  });
  for (const id of ['base', 'head_dim', 'seq', 'offset', 'mode', 'rotation', 'rotary_dim']) $(id).addEventListener('change', update);
  $('pos').addEventListener('input', () => { playing = false; $('play').textContent = 'play'; pos = Number($('pos').value); drawPhasors(); });
  $('play').addEventListener('click', () => { playing = !playing; $('play').textContent = playing ? 'pause' : 'play'; });
  $('full').addEventListener('click', () => conformance(true));
  const first = update();
  document.body.dataset.interactiveMs = performance.now().toFixed(0); // since navigation start
  requestAnimationFrame(tick);
  await backendReady;
  await conformance(false);
  await first;
}

main().catch((e) => {
  $('backend').textContent = `failed to start: ${e}`;
  const el = $('selftest'); el.dataset.status = 'fail'; el.textContent = `failed to start: ${e}`;
});
