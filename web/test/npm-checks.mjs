// Checks of the installed npm package, run in the browser and in Node by test/package.mjs.
// `bfrope` is the package's module namespace, already initialised. Expected outputs come from
// arithmetic done here, not from the library:
// - position 0 (cos 1, sin 0) returns every element unchanged, bit for bit;
// - at nonzero positions, with a caller's table of short constants (at most 7 significant
//   bits) and inputs of at most 8 (bf16), 11 (f16) or 24 (f32) significant bits within a few
//   binades, x0·c − x1·s and x0·s + x1·c are exact in f64; rounding that to the dtype with
//   ties to even (roundTo below, exact power-of-two scaling) is the correctly rounded result
//   the library promises;
// - the quick conformance suite (the demo page's self-check) finds 0 mismatches.
// Resolves to { backend, results: [{ ok, what }], failures }.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** v (a finite f64) rounded to `bits` significant bits, ties to even, with the format's smallest
 * normal exponent `emin` (below it the spacing stays 2^(emin - bits + 1): subnormals). */
export function roundTo(v, bits, emin) {
  if (v === 0 || !Number.isFinite(v)) return v;
  const a = Math.abs(v);
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, emin) - (bits - 1));
  const q = a / ulp; // exact: a power-of-two scaling
  const fl = Math.floor(q), frac = q - fl;
  const r = frac > 0.5 || (frac === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  return Math.sign(v) * r * ulp;
}

const bf16Bits = (v) => { f32[0] = v; if (f32[0] !== v) throw new Error(`${v} is not a bf16 value`); return u32[0] >>> 16; };
const fromBf16 = (h) => { u32[0] = h << 16; return f32[0]; };
/** f16 bits of a value that f16 holds exactly (normal range). */
function f16Bits(v) {
  if (v === 0) return Object.is(v, -0) ? 0x8000 : 0;
  const s = v < 0 ? 0x8000 : 0, a = Math.abs(v);
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  const m = (a / 2 ** e - 1) * 1024;
  if (e < -14 || e > 15 || !Number.isInteger(m)) throw new Error(`${v} is not a normal f16 value`);
  return s | ((e + 15) << 10) | m;
}
function fromF16(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  if (e === 0) return s * m * 2 ** -24;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

// A deterministic generator (xorshift32) of values with `bits` significant bits in [2^-3, 2^3).
function values(n, bits, seed) {
  let x = seed >>> 0 || 1;
  const next = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
  return Array.from({ length: n }, () => {
    const mant = 2 ** (bits - 1) + (next() % 2 ** (bits - 1)); // bits significant bits
    const exp = (next() % 6) - 3;
    return (next() & 1 ? -1 : 1) * mant * 2 ** (exp - (bits - 1));
  });
}

// (cos, sin) pairs of few significant bits: quarter turns, and ones whose results need rounding.
const CS = [[0, 1], [-1, 0], [0.5, 0.5], [0.75, -0.25], [-0.375, 0.625], [1, 0], [0.5, -0.875],
  [0.125, 0.984375], [-0.6875, -0.71875], [0.9375, 0.34375], [0, -1], [-0.8125, 0.5625]];

const DTYPES = {
  bf16: { bits: 8, emin: -126, Array: Uint16Array, enc: bf16Bits, dec: fromBf16 },
  f16: { bits: 11, emin: -14, Array: Uint16Array, enc: f16Bits, dec: fromF16 },
  f32: { bits: 24, emin: -126, Array: Float32Array, enc: (v) => v, dec: (v) => v },
};

export async function runChecks(bfrope) {
  const results = [];
  const check = (ok, what) => results.push({ ok: !!ok, what });
  // The rounding oracle itself against Math.fround (f32, round to nearest even by the spec).
  let oracleBad = 0;
  for (const v of [...values(2000, 40, 7), 1 + 2 ** -24, 1 + 3 * 2 ** -24, -(2 ** -130) * 1.75, 2 ** -149 * 2.5]) {
    if (!Object.is(roundTo(v, 24, -126), Math.fround(v))) oracleBad++;
  }
  check(oracleBad === 0, `the test's rounding (roundTo) agrees with Math.fround on 2004 values (${oracleBad} differ)`);

  const info = await bfrope.backend_info();
  check(['webgpu', 'cpu'].includes(info.backend), `backend_info(): ${info.backend} (${info.adapter})`);

  const [B, S, H, D] = [2, 3, 2, 16];
  const n = B * S * H * D, half = D / 2;
  for (const [name, t] of Object.entries(DTYPES)) {
    const vals = values(n, t.bits, 0x9e3779b9 ^ t.bits);
    const x = t.Array.from(vals, t.enc);
    for (const rotation of ['interleaved', 'half']) {
      // Position 0 for every token, a table built from a base: cos 1, sin 0, the input back.
      const y0 = await bfrope.rope(x, { dims: [B, S, H, D], rotation, positions: Array(B * S).fill(0),
        positionsPer: 'token', table: { base: 10000 }, ...(name === 'f16' ? { dtype: 'f16' } : {}) });
      const same = y0 instanceof t.Array && y0.length === n && y0.every((v, i) => Object.is(v, x[i]));
      check(same, `${name} ${rotation}: position 0 returns the input bit for bit`);

      // Positions 5.. (batch row b starts at 5 + 2b), a caller's table of short constants.
      const starts = Array.from({ length: B }, (_, b) => 5 + 2 * b);
      const rows = starts[B - 1] + S;
      const cos = new Float32Array(rows * half), sin = new Float32Array(rows * half);
      for (let r = 0; r < rows; r++) for (let i = 0; i < half; i++) {
        const [c, s] = CS[(3 * r + i) % CS.length];
        cos[r * half + i] = c; sin[r * half + i] = s;
      }
      const y = await bfrope.rope(x, { dims: [B, S, H, D], rotation, positions: starts, positionsPer: 'batch',
        table: { cos, sin, width: half }, ...(name === 'f16' ? { dtype: 'f16' } : {}) });
      let bad = 0, first = '';
      for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) for (let h = 0; h < H; h++) {
        const pos = starts[b] + s, base = ((b * S + s) * H + h) * D;
        for (let i = 0; i < half; i++) {
          const [j0, j1] = rotation === 'interleaved' ? [2 * i, 2 * i + 1] : [i, i + half];
          const c = cos[pos * half + i], sn = sin[pos * half + i];
          const x0 = vals[base + j0], x1 = vals[base + j1];
          const want = [roundTo(x0 * c - x1 * sn, t.bits, t.emin), roundTo(x0 * sn + x1 * c, t.bits, t.emin)];
          [j0, j1].forEach((j, k) => {
            const got = t.dec(y[base + j]);
            if (!Object.is(got, want[k]) && !(got === 0 && want[k] === 0)) {
              if (!bad++) first = `[b${b} s${s} h${h} d${j}] position ${pos}: got ${got}, want ${want[k]} (x0 ${x0}, x1 ${x1}, cos ${c}, sin ${sn})`;
            }
          });
        }
      }
      check(bad === 0, `${name} ${rotation}: positions ${starts.join(', ')}.. with a caller's table, ${n} outputs correctly rounded${bad ? `; ${bad} differ, first ${first}` : ''}`);
    }
  }

  // The f32 example of README.md, as written there.
  const z = await bfrope.rope(new Float32Array([1, 2, 3, 4]), { dims: [1, 1, 1, 4], positions: 1,
    table: { cos: new Float32Array([1, 1, 0, 0.5]), sin: new Float32Array([0, 0, 1, 0.5]), width: 2 } });
  check(z.join() === [-2, 1, -0.5, 3.5].join(), `README's f32 example: [${Array.from(z).join(', ')}]`);

  // A bad option is refused with a sentence naming it.
  let refused = '';
  try { await bfrope.rope(new Uint16Array(16), { dims: [1, 1, 1, 16], table: { base: 10000 }, rotaton: 'half' }); } catch (e) { refused = String(e.message ?? e); }
  check(refused.includes('rotaton'), `a misspelt option is refused: ${refused}`);

  // The demo page's self-check: the quick conformance suite on this backend.
  const conf = await bfrope.run_conformance(false);
  check(conf.mismatches === 0 && conf.fingerprintMismatches === 0 && conf.checked > 0,
    `quick conformance suite on ${conf.backend}: ${conf.checked} outputs checked, ${conf.mismatches} mismatches, ${conf.fingerprintMismatches} fingerprint mismatches`);

  return { backend: info.backend, results, failures: results.filter((r) => !r.ok).length };
}
