// The bfrope page: controls, visualisations and live conformance, all through the wasm package.
import init, {
  backend_info, build_table, rope, rope_bf16, run_conformance, precision_maps, ropeFromConfig, frequenciesFor, tableFor,
  gradeResults,
} from './pkg/bfrope.js';

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


// ---- scaling variants --------------------------------------------------------------------------
// Real models' rope settings, as their config.json files give them (only the keys that matter).
const BUILTIN_CONFIGS = {
  llama31: {
    name: 'Llama-3.1-8B',
    json: {
      model_type: 'llama', hidden_size: 4096, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 128,
      max_position_embeddings: 131072, rope_theta: 500000.0,
      rope_scaling: { rope_type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192 },
    },
  },
  qwen25: {
    // Qwen2.5-7B-Instruct's config.json with the rope_scaling its model card adds for 128K contexts.
    name: 'Qwen2.5-7B + YaRN ×4',
    json: {
      model_type: 'qwen2', hidden_size: 3584, num_attention_heads: 28, num_key_value_heads: 4,
      max_position_embeddings: 32768, rope_theta: 1000000.0,
      rope_scaling: { type: 'yarn', factor: 4.0, original_max_position_embeddings: 32768 },
    },
  },
  phi3: {
    // Phi-3-vision-128k-instruct's factors (its config names the type "su", which transformers and bfrope read as "longrope").
    name: 'Phi-3-vision-128k (LongRoPE)',
    json: {
      model_type: 'phi3', hidden_size: 3072, num_attention_heads: 32, num_key_value_heads: 32,
      max_position_embeddings: 131072, original_max_position_embeddings: 4096, rope_theta: 10000.0,
      rope_scaling: {
        type: 'longrope',
        long_factor: [1.0299999713897705, 1.0499999523162842, 1.0499999523162842, 1.0799999237060547, 1.2299998998641968,
          1.2299998998641968, 1.2999999523162842, 1.4499999284744263, 1.5999999046325684, 1.6499998569488525,
          1.8999998569488525, 2.859999895095825, 3.68999981880188, 5.419999599456787, 5.489999771118164, 5.489999771118164,
          9.09000015258789, 11.579999923706055, 15.65999984741211, 15.769999504089355, 15.789999961853027,
          18.360000610351562, 21.989999771118164, 23.079999923706055, 30.009998321533203, 32.35000228881836,
          32.590003967285156, 35.56000518798828, 39.95000457763672, 53.840003967285156, 56.20000457763672,
          57.95000457763672, 59.29000473022461, 59.77000427246094, 59.920005798339844, 61.190006256103516,
          61.96000671386719, 62.50000762939453, 63.3700065612793, 63.48000717163086, 63.48000717163086, 63.66000747680664,
          63.850006103515625, 64.08000946044922, 64.760009765625, 64.80001068115234, 64.81001281738281, 64.81001281738281],
        short_factor: [1.05, 1.05, 1.05, 1.1, 1.1, 1.1, 1.2500000000000002, 1.2500000000000002, 1.4000000000000004,
          1.4500000000000004, 1.5500000000000005, 1.8500000000000008, 1.9000000000000008, 2.000000000000001,
          2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001,
          2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001,
          2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001,
          2.1000000000000005, 2.1000000000000005, 2.2, 2.3499999999999996, 2.3499999999999996, 2.3499999999999996,
          2.3499999999999996, 2.3999999999999995, 2.3999999999999995, 2.6499999999999986, 2.6999999999999984,
          2.8999999999999977, 2.9499999999999975, 3.049999999999997, 3.049999999999997, 3.049999999999997],
      },
    },
  },
};
window.BFROPE_CONFIGS = BUILTIN_CONFIGS; // for other scripts (and the page test)
let fileConfig = null; // {name, text} of the last config.json loaded from a file

// An example recipe of each rope type, on the page's base, head_dim and table mode.
function exampleRecipe(kind, p) {
  const num = (id, lo, hi, d) => { const v = Number($(id).value); return Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : d; };
  const factor = num('v-factor', 1, 1024, 4), orig = Math.round(num('v-orig', 16, 2 ** 20, 4096)), n = p.d / 2;
  const ramp = (i) => (n > 1 ? i / (n - 1) : 0);
  const variant = {
    default: { type: 'default' },
    linear: { type: 'linear', factor },
    dynamic: { type: 'dynamic', factor, maxPositionEmbeddings: orig },
    yarn: { type: 'yarn', factor, originalMaxPositionEmbeddings: orig },
    llama3: { type: 'llama3', factor, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: orig },
    // Factors growing from 1 (fast pairs kept) to the whole factor (slow pairs), as searched ones roughly do.
    longrope: {
      type: 'longrope', factor, originalMaxPositionEmbeddings: orig,
      shortFactor: Array.from({ length: n }, (_, i) => 1 + 0.5 * ramp(i) ** 2),
      longFactor: Array.from({ length: n }, (_, i) => 1 + (factor - 1) * ramp(i) ** 1.5),
    },
  }[kind];
  return {
    label: `example ${kind}`, source: 'example', pairing: null,
    recipe: { base: p.base, rotaryDim: p.d, variant, angles: p.mode }, orig, extended: Math.round(orig * factor),
  };
}

// A recipe from a config.json's text (throws the library's sentence naming the key).
function configRecipe(label, source, text) {
  const c = ropeFromConfig(text), v = c.recipe.variant;
  const orig = v.originalMaxPositionEmbeddings ?? v.maxPositionEmbeddings ?? c.maxPositionEmbeddings ?? 4096;
  const extended = Math.max(c.maxPositionEmbeddings ?? 0, v.factor ? Math.round(orig * v.factor) : 0, orig);
  return { label, source, pairing: c.pairing, recipe: c.recipe, orig, extended };
}

function selectedRecipe(p) {
  const which = $('variant').value;
  if (which.startsWith('cfg:')) {
    const b = BUILTIN_CONFIGS[which.slice(4)];
    return configRecipe(b.name, 'builtin', JSON.stringify(b.json));
  }
  if (which === 'file') {
    if (!fileConfig) throw new Error('choose a config.json file with the file input');
    return configRecipe(fileConfig.name, 'config.json', fileConfig.text);
  }
  return exampleRecipe(which, p);
}

function drawVariants() {
  const p = params(), info = $('variant-info'), cv = $('variants'), ctx = cv.getContext('2d'), W = cv.width, H = cv.height;
  const pad = { l: 48, r: 150, t: 12, b: 30 };
  info.dataset.selected = $('variant').value;
  // factor and original context shape the examples only; a config.json says its own.
  $('v-factor').disabled = $('v-orig').disabled = $('variant').value.startsWith('cfg:') || $('variant').value === 'file';
  let sel, fr, frOrig, def, check;
  try {
    sel = selectedRecipe(p);
    const r = sel.recipe;
    fr = frequenciesFor(r, sel.extended - 1);
    frOrig = frequenciesFor(r, sel.orig - 1);
    def = frequenciesFor({ base: r.base, rotaryDim: r.rotaryDim, angles: r.angles }, 0);
    // tableFor at position 0: cos is the attention factor there, rounded once to f32.
    if (!r.axes || r.axes === 'single') {
      const t = tableFor(r, [0, sel.extended - 1]);
      check = { cos0: t.cos[0], ok: t.cos[0] === Math.fround(fr.attentionFactor) };
    }
  } catch (e) {
    axes(ctx, W, H, pad);
    ctx.fillStyle = '#b3261e'; ctx.font = '13px system-ui, sans-serif';
    ctx.fillText(String(e.message ?? e).slice(0, 120), pad.l + 8, H / 2);
    info.dataset.variant = ''; info.dataset.error = String(e.message ?? e); info.dataset.source = sel?.source ?? '';
    info.textContent = `${$('variant').selectedOptions[0]?.textContent ?? ''}: ${e.message ?? e}`;
    return;
  }
  const wl = fr.wavelength, wlOrig = frOrig.wavelength, wd = def.wavelength, n = wl.length;
  axes(ctx, W, H, pad);
  const all = [...wl, ...wlOrig, ...wd, sel.orig, sel.extended];
  const lo = Math.floor(Math.log10(Math.min(...all, 1))), hi = Math.ceil(Math.log10(Math.max(...all) * 1.5));
  const Y = (v) => H - pad.b - ((Math.log10(v) - lo) / (hi - lo)) * (H - pad.t - pad.b);
  const X = (i) => pad.l + ((i + 0.5) / n) * (W - pad.l - pad.r);
  for (let e = lo; e <= hi; e++) {
    ctx.strokeStyle = '#eef0f3'; ctx.beginPath(); ctx.moveTo(pad.l, Y(10 ** e)); ctx.lineTo(W - pad.r, Y(10 ** e)); ctx.stroke();
    ctx.fillStyle = '#5b6573'; ctx.fillText(`1e${e}`, 8, Y(10 ** e) + 4);
  }
  const line = (v, colour, width, dash) => {
    ctx.strokeStyle = colour; ctx.lineWidth = width; ctx.setLineDash(dash); ctx.beginPath();
    v.forEach((w, i) => (i ? ctx.lineTo(X(i), Y(w)) : ctx.moveTo(X(i), Y(w))));
    ctx.stroke(); ctx.setLineDash([]); ctx.lineWidth = 1;
  };
  const hline = (v, colour, label) => {
    ctx.strokeStyle = colour; ctx.setLineDash([6, 4]); ctx.beginPath(); ctx.moveTo(pad.l, Y(v)); ctx.lineTo(W - pad.r, Y(v)); ctx.stroke(); ctx.setLineDash([]);
    ctx.fillStyle = colour; ctx.fillText(label, W - pad.r + 6, Y(v) + 4);
  };
  hline(sel.orig, '#5b6573', `original ${sel.orig.toLocaleString('en')}`);
  hline(sel.extended, '#b3261e', `extended ${sel.extended.toLocaleString('en')}`);
  line(wd, '#9aa4b1', 2, []);
  const differsInside = wlOrig.some((w, i) => w !== wl[i]);
  if (differsInside) line(wlOrig, '#d98a2b', 1.5, [4, 3]);
  line(wl, '#2f6fd6', 2.5, []);
  ctx.fillStyle = '#5b6573'; ctx.fillText(`pair i → (${n} pairs, rotary dim ${sel.recipe.rotaryDim})`, pad.l + 4, H - 10);
  ctx.fillText('wavelength 2π/θᵢ (positions per turn)', pad.l + 6, pad.t + 10);
  const key = [['#9aa4b1', 'default'], ['#2f6fd6', `${sel.recipe.variant.type} at extended`]];
  if (differsInside) key.push(['#d98a2b', `${sel.recipe.variant.type} at original`]);
  key.forEach(([c, t], k) => { ctx.fillStyle = c; ctx.fillRect(W - pad.r + 6, H - pad.b - 14 * (key.length - k) - 30, 12, 3); ctx.fillStyle = '#5b6573'; ctx.fillText(t, W - pad.r + 22, H - pad.b - 14 * (key.length - k) - 26); });
  const stretched = wl.filter((w, i) => w > wd[i] * (1 + 1e-12)).length;
  const beyond = (v) => v.filter((w) => w > sel.orig).length;
  info.dataset.variant = sel.recipe.variant.type; info.dataset.source = sel.source; info.dataset.error = '';
  info.dataset.rotaryDim = String(sel.recipe.rotaryDim); info.dataset.attention = String(fr.attentionFactor);
  info.textContent = `${sel.label}: rope_type ${sel.recipe.variant.type}, base ${sel.recipe.base}, rotary dim ${sel.recipe.rotaryDim}` +
    `${sel.pairing ? `, ${sel.pairing === 'half' ? 'half-split' : 'interleaved'} pairs` : ''}${sel.recipe.axes && sel.recipe.axes !== 'single' ? `, axes ${sel.recipe.axes}` : ''}; ` +
    `${stretched} of ${n} pairs stretched at ${sel.extended.toLocaleString('en')} positions; pairs slower than the original context: ` +
    `${beyond(wd)} by default, ${beyond(wl)} scaled; attention factor ${fr.attentionFactor.toFixed(6)}` +
    (check ? ` (tableFor: cos at position 0 = ${check.cos0}${check.ok ? ', the factor rounded once' : ' — NOT the factor (a bug)'})` : '') + '.';
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
    for (const method of ['kernel', 'hf', 'f32']) {
      const cv = $(`err-${method}-${which}`), n = m.differ[method];
      drawGrid(cv, m.rows, m.pairs, (r, c) => m[method][r * m.pairs + c] / ERR_MAX, heat);
      cv.dataset.differ = String(n); cv.dataset.outputs = String(m.outputs); cv.dataset.max = String(m.max[method]);
      const share = (100 * n) / m.outputs;
      cv.nextElementSibling.querySelector('span').textContent = `positions ${first}…${first + rows - 1}: max ${m.max[method] < 10 ? m.max[method].toFixed(3) : Math.round(m.max[method]).toLocaleString('en')} ulp; ` +
        `${n.toLocaleString('en')} of ${m.outputs.toLocaleString('en')} outputs (${share < 0.1 && n ? share.toFixed(3) : share.toFixed(1)}%) differ from exact`;
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

// ---- grading a results file ---------------------------------------------------------------------
function gradeReport(vectors, bytes, source) {
  const el = $('grade-report');
  el.dataset.status = 'running';
  el.textContent = `grading ${source}…`;
  setTimeout(() => {
    try {
      const r = gradeResults(vectors, bytes);
      const pct = (n, d) => (d ? `${(100 * n / d).toFixed(n === d ? 0 : 1)}%` : '');
      const lines = [`${r.pass ? 'PASS' : 'FAIL'}: ${source}, ${r.outputs.toLocaleString('en')} outputs, ${r.mismatches.toLocaleString('en')} differ from the correctly rounded result`,
        `${'group / class'.padEnd(34)} ${'outputs'.padStart(9)} ${'differ'.padStart(9)} ${'worst ulp'.padStart(9)}  accepted by ${r.peers.join(' / ')}`];
      const row = (label, c) => `${label.padEnd(34)} ${String(c.outputs).padStart(9)} ${String(c.mismatches).padStart(9)} ${String(c.worstUlp).padStart(9)}  ` +
        (c.mismatches ? c.accepted.map((n) => pct(n, c.mismatches)).join(' / ') : '');
      for (const g of r.groups) {
        lines.push(row(g.group, g));
        for (const [name, c] of Object.entries(g.classes)) if (c.mismatches) lines.push(row(`  ${name}`, c));
      }
      el.textContent = lines.join('\n');
      el.dataset.status = r.pass ? 'pass' : 'fail';
      el.dataset.mismatches = String(r.mismatches);
      el.dataset.outputs = String(r.outputs);
    } catch (e) {
      el.textContent = `${source} cannot be graded: ${e}`;
      el.dataset.status = 'error';
    }
  }, 0);
}

async function gradeFiles() {
  const v = $('vectors-file').files[0], r = $('results-file').files[0];
  if (!v || !r) { $('grade-report').textContent = 'give both files: the vectors and the results'; return; }
  gradeReport(new Uint8Array(await v.arrayBuffer()), new Uint8Array(await r.arrayBuffer()), r.name);
}
$('vectors-file').addEventListener('change', gradeFiles);
$('results-file').addEventListener('change', gradeFiles);

// ---- wiring ------------------------------------------------------------------------------------
let generation = 0, backendReady = null;
async function update() {
  const gen = ++generation, p = params();
  let table;
  try {
    table = build_table(p.base, p.d, p.offset, p.seq, p.mode);
  } catch (e) { $('backend').textContent = `invalid parameters: ${e}`; return; }
  drawTable(p, table); // synchronous: the page is usable from here
  drawVariants();
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
  for (const id of ['variant', 'v-factor', 'v-orig']) $(id).addEventListener('change', drawVariants);
  $('config-file').addEventListener('change', async (ev) => {
    const f = ev.target.files?.[0];
    if (!f) return;
    fileConfig = { name: f.name, text: await f.text() };
    $('variant').value = 'file';
    drawVariants();
  });
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
