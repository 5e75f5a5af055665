// Loads the bfrope page in headless Chromium and checks what a visitor would see:
// the self-check passes with 0 mismatches, every canvas has drawn, the page is interactive fast,
// and the rotation / rotary_dim controls drive rope() (dims past rotary_dim come back unchanged);
// every scaling variant and built-in config draws its wavelengths, a config.json loaded through the
// file input is read (a bad one is refused naming the key), the hf error map shows outputs that
// differ from exact while the exact kernel's shows none, and the console holds no error.
// Usage: node test/page.mjs [url] (default http://127.0.0.1:$PORT/, PORT 8123); OUT_DIR for the screenshot.
// NO_WEBGPU=1 hides navigator.gpu from the page: the CPU fallback must then pass the same checks.
import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const url = process.argv[2] ?? `http://127.0.0.1:${process.env.PORT ?? 8123}/`;
const outDir = process.env.OUT_DIR ?? 'out/web';
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const timeoutMs = Number(process.env.SELFTEST_TIMEOUT_MS ?? 240000);
const interactiveBudgetMs = Number(process.env.INTERACTIVE_BUDGET_MS ?? 2000);
mkdirSync(outDir, { recursive: true });

// WebGPU in headless Chromium: unsafe-webgpu, Vulkan through SwiftShader when there is no GPU.
const env = { ...process.env };
delete env.VK_DRIVER_FILES;
delete env.VK_ICD_FILENAMES;
const userDataDir = mkdtempSync(join(tmpdir(), 'bfrope-chromium-'));
const args = [
  '--headless=new', '--no-sandbox', '--enable-unsafe-webgpu',
  '--enable-features=Vulkan', '--use-angle=swiftshader', '--use-webgpu-adapter=swiftshader',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-first-run', '--no-default-browser-check',
  ...(process.env.CHROMIUM_ARGS ? process.env.CHROMIUM_ARGS.split(' ') : []),
];

const noWebGpu = process.env.NO_WEBGPU === '1';
const shot = join(outDir, noWebGpu ? 'screenshot-cpu.png' : 'screenshot.png');
const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); };

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath, args, env, headless: true, viewport: { width: 1000, height: 900 },
});
try {
  if (noWebGpu) await context.addInitScript(() => { delete Object.getPrototypeOf(navigator).gpu; });
  const page = context.pages()[0] ?? (await context.newPage());
  const logs = [];
  page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
  const t0 = Date.now();
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => document.body.dataset.interactiveMs !== undefined, null, { timeout: 30000 });
  const interactiveMs = Number(await page.evaluate(() => document.body.dataset.interactiveMs));
  await page.waitForFunction(() => ['pass', 'fail'].includes(document.getElementById('selftest')?.dataset.status), null, { timeout: timeoutMs });
  const selftest = await page.evaluate(() => {
    const el = document.getElementById('selftest');
    return { ...el.dataset, text: el.textContent, banner: document.getElementById('backend').textContent };
  });
  const selftestMs = Date.now() - t0;
  await page.waitForFunction(() => document.body.dataset.drawn === 'true', null, { timeout: timeoutMs });
  // Every canvas has drawn: its pixels are not all one colour.
  const canvases = await page.evaluate(() => [...document.querySelectorAll('canvas')].map((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0, sum = 0, sq = 0;
    for (let i = 0; i < d.length; i += 4) { const v = d[i] * 0.3 + d[i + 1] * 0.59 + d[i + 2] * 0.11; sum += v; sq += v * v; n++; }
    const mean = sum / n;
    return { id: c.id, variance: sq / n - mean * mean };
  }));
  // The full suite, through the page's button (after the quick one, whose result is read above).
  await page.click('#full');
  await page.waitForFunction(() => document.getElementById('selftest').textContent.includes('full suite'), null, { timeout: timeoutMs });
  await page.waitForFunction(() => ['pass', 'fail'].includes(document.getElementById('selftest').dataset.status), null, { timeout: timeoutMs });
  const fullRun = await page.evaluate(() => ({ ...document.getElementById('selftest').dataset }));
  // The rotation controls drive rope(): half-split pairs over a quarter of the head, the rest unchanged.
  const pairsBefore = await page.evaluate(() => ({ ...document.getElementById('pairs-info').dataset }));
  await page.selectOption('#rotation', 'half');
  await page.selectOption('#rotary_dim', '0.25');
  const headDim = Number(await page.$eval('#head_dim', (e) => e.value));
  await page.waitForFunction((r) => { const d = document.getElementById('pairs-info').dataset; return d.rotation === 'half' && d.rotaryDim === r; }, String(headDim / 4), { timeout: timeoutMs });
  const pairsAfter = await page.evaluate(() => ({ ...document.getElementById('pairs-info').dataset, text: document.getElementById('pairs-info').textContent }));
  // Scaling variants: each example and built-in config draws (pixel variance) with its rope type.
  const variance = (id) => page.evaluate((id) => {
    const c = document.getElementById(id), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0, sum = 0, sq = 0;
    for (let i = 0; i < d.length; i += 4) { const v = d[i] * 0.3 + d[i + 1] * 0.59 + d[i + 2] * 0.11; sum += v; sq += v * v; n++; }
    return sq / n - (sum / n) ** 2;
  }, id);
  const variantInfo = () => page.evaluate(() => { const e = document.getElementById('variant-info'); return { ...e.dataset, text: e.textContent }; });
  const expectType = { default: 'default', linear: 'linear', dynamic: 'dynamic', yarn: 'yarn', llama3: 'llama3', longrope: 'longrope',
    'cfg:llama31': 'llama3', 'cfg:qwen25': 'yarn', 'cfg:phi3': 'longrope' };
  const variantShots = {};
  for (const [value, type] of Object.entries(expectType)) {
    await page.selectOption('#variant', value);
    await page.waitForFunction((v) => document.getElementById('variant-info').dataset.selected === v, value, { timeout: 10000 });
    const info = await variantInfo();
    variantShots[value] = await variance('variants');
    check(info.variant === type && info.error === '' && variantShots[value] > 1,
      `variant ${value}: rope_type ${info.variant}, canvas variance ${variantShots[value].toFixed(1)}: ${info.text}`);
  }
  const builtin = await variantInfo(); // Phi-3, the last one
  check(builtin.source === 'builtin' && builtin.rotaryDim === '96' && Math.abs(Number(builtin.attention) - 1.1902380714238083) < 1e-12,
    `built-in Phi-3 config: rotary dim ${builtin.rotaryDim}, attention factor ${builtin.attention}`);
  // A config.json through the file input (a built-in one's text), then a bad one.
  const qwen = await page.evaluate(() => JSON.stringify(window.BFROPE_CONFIGS.qwen25.json));
  await page.setInputFiles('#config-file', { name: 'config.json', mimeType: 'application/json', buffer: Buffer.from(qwen) });
  await page.waitForFunction(() => document.getElementById('variant-info').dataset.source === 'config.json', null, { timeout: 10000 });
  const loaded = await variantInfo();
  check(loaded.variant === 'yarn' && loaded.rotaryDim === '128' && Math.abs(Number(loaded.attention) - (0.1 * Math.log(4) + 1)) < 1e-12,
    `config.json loaded from a file: ${loaded.text}`);
  const loadedShot = await page.locator('#variants-section').screenshot({ path: join(outDir, noWebGpu ? 'variants-cpu.png' : 'variants.png') });
  check(loadedShot.length > 0, 'variants section screenshot written');
  const bad = JSON.stringify({ head_dim: 64, rope_scaling: { rope_type: 'ntk-by-parts', factor: 2 } });
  await page.setInputFiles('#config-file', { name: 'bad.json', mimeType: 'application/json', buffer: Buffer.from(bad) });
  await page.waitForFunction(() => document.getElementById('variant-info').dataset.error !== '', null, { timeout: 10000 });
  const refused = await variantInfo();
  check(refused.error.includes('rope_type') && refused.error.includes('"ntk-by-parts"'), `a bad config.json is refused naming the key: ${refused.error}`);
  await page.setInputFiles('#config-file', { name: 'config.json', mimeType: 'application/json', buffer: Buffer.from(qwen) });
  await page.waitForFunction(() => document.getElementById('variant-info').dataset.error === '', null, { timeout: 10000 });
  // The hf error maps: a share of outputs differs from exact; the exact kernel's none.
  const maps = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('canvas.err')].map((c) => [c.id, { ...c.dataset }])));
  for (const which of ['short', 'long']) {
    const k = maps[`err-kernel-${which}`], h = maps[`err-hf-${which}`], f = maps[`err-f32-${which}`];
    check(k.differ === '0' && Number(k.max) <= 0.5, `exact kernel (${which}): ${k.differ} of ${k.outputs} outputs differ from exact, max ${k.max} ulp`);
    check(Number(h.differ) > 0 && Number(h.max) >= 1, `hf (${which}): ${h.differ} of ${h.outputs} outputs (${(100 * h.differ / h.outputs).toFixed(1)}%) differ from exact, max ${Number(h.max).toFixed(1)} ulp`);
    console.log(`     plain f32 (${which}): ${f.differ} of ${f.outputs} outputs differ, max ${Number(f.max).toFixed(3)} ulp`);
  }
  // Grading a results file against the vectors `bfrope vectors` wrote (VECTORS_DIR): the correctly
  // rounded outputs pass; one changed output fails, named with its class; a file that is not
  // safetensors is refused in a sentence.
  const gradeDone = () => page.waitForFunction(() => ['pass', 'fail', 'error'].includes(document.getElementById('grade-report').dataset.status), null, { timeout: timeoutMs });
  const gradeState = () => page.evaluate(() => ({ ...document.getElementById('grade-report').dataset, text: document.getElementById('grade-report').textContent }));
  const resetGrade = () => page.evaluate(() => { document.getElementById('grade-report').dataset.status = 'idle'; });
  const vectors = readFileSync(join(process.env.VECTORS_DIR, 'vectors.safetensors'));
  // The expected tensors renamed <group>.output: what a correct implementation writes.
  const results = (edit) => {
    const n = Number(vectors.readBigUInt64LE(0));
    const header = JSON.parse(vectors.subarray(8, 8 + n).toString());
    const out = {}, parts = [];
    let offset = 0;
    for (const [name, t] of Object.entries(header)) {
      if (!name.endsWith('.expected')) continue;
      const data = Buffer.from(vectors.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]));
      const o = name.replace(/\.expected$/, '.output');
      edit(o, data);
      out[o] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + data.length] };
      offset += data.length;
      parts.push(data);
    }
    let h = Buffer.from(JSON.stringify(out));
    h = Buffer.concat([h, Buffer.alloc((8 - (h.length % 8)) % 8, 0x20)]);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(h.length));
    return Buffer.concat([len, h, ...parts]);
  };
  await page.setInputFiles('#vectors-file', { name: 'vectors.safetensors', mimeType: 'application/octet-stream', buffer: vectors });
  await resetGrade();
  await page.setInputFiles('#results-file', { name: 'exact.safetensors', mimeType: 'application/octet-stream', buffer: results(() => {}) });
  await gradeDone();
  const own = await gradeState();
  check(own.status === 'pass' && own.mismatches === '0' && Number(own.outputs) > 1e6, `grading the correctly rounded outputs: ${own.text.split('\n')[0]}`);
  await resetGrade();
  // the last element of the partial group: a pass-through element
  const changedFile = results((name, data) => { if (name.endsWith('-partial.output')) data[data.length - 1] ^= 0x04; });
  await page.setInputFiles('#results-file', { name: 'changed.safetensors', mimeType: 'application/octet-stream', buffer: changedFile });
  await gradeDone();
  const changed = await gradeState();
  check(changed.status === 'fail' && changed.mismatches === '1' && changed.text.includes('pass-through'), `a changed output fails, naming its class: ${changed.text.split('\n').filter((l) => l.includes('pass-through') || l.startsWith('FAIL')).join(' | ')}`);
  await resetGrade();
  await page.setInputFiles('#results-file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a tensor file') });
  await gradeDone();
  const garbage = await gradeState();
  check(garbage.status === 'error' && garbage.text.includes('notes.txt') && garbage.text.includes('safetensors'), `a file that is not safetensors is refused: ${garbage.text}`);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: shot, fullPage: true });

  console.log(`backend: ${selftest.backend} — ${selftest.banner}`);
  console.log(selftest.text);
  check(selftest.status === 'pass', `self-check status is pass (got ${selftest.status})`);
  check(selftest.mismatches === '0', `0 mismatches (got ${selftest.mismatches})`);
  check(Number(selftest.checked) > 0, `outputs checked: ${selftest.checked}`);
  check(noWebGpu ? selftest.backend === 'cpu' : ['webgpu', 'cpu'].includes(selftest.backend), `backend named: ${selftest.backend}`);
  if (!noWebGpu && selftest.backend !== 'webgpu') console.log('note: WebGPU was not available; the CPU path ran');
  check(fullRun.status === 'pass' && fullRun.mismatches === '0', `full suite: ${fullRun.checked} outputs checked, ${fullRun.mismatches} mismatches, ${fullRun.ms} ms`);
  check(selftest.fingerprintMismatches === '0', `CPU path fingerprints match the native build's (mismatches: ${selftest.fingerprintMismatches})`);
  check(pairsBefore.rotation === 'interleaved' && pairsBefore.rotaryDim === String(headDim), `rotation controls start at interleaved, rotary_dim ${pairsBefore.rotaryDim}`);
  check(pairsAfter.rotation === 'half' && pairsAfter.rotaryDim === String(headDim / 4) && pairsAfter.passthrough === 'unchanged',
    `rotation=half, rotary_dim=${headDim / 4} through rope(): ${pairsAfter.text}`);
  for (const c of canvases) check(c.variance > 1, `canvas #${c.id} has drawn (pixel variance ${c.variance.toFixed(1)})`);
  const consoleErrors = logs.filter((l) => l.startsWith('[error]') || l.startsWith('[pageerror]'));
  check(consoleErrors.length === 0, `no console errors (${consoleErrors.length}${consoleErrors.length ? `: ${consoleErrors.slice(0, 3).join(' | ')}` : ''})`);
  check(interactiveMs <= interactiveBudgetMs, `page interactive in ${interactiveMs} ms (budget ${interactiveBudgetMs} ms)`);
  console.log(`self-check finished ${selftestMs} ms after navigation; screenshot: ${shot}`);
  if (failures.length) console.log(`browser console:\n${logs.join('\n')}`);
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
if (failures.length) { console.log(`${failures.length} check(s) failed`); process.exit(1); }
console.log('all browser checks passed');
