// Loads the bfrope page in headless Chromium and checks what a visitor would see:
// the self-check passes with 0 mismatches, every canvas has drawn, the page is interactive fast,
// and the rotation / rotary_dim controls drive rope() (dims past rotary_dim come back unchanged).
// Usage: node test/page.mjs [url] (default http://127.0.0.1:$PORT/, PORT 8123); OUT_DIR for the screenshot.
// NO_WEBGPU=1 hides navigator.gpu from the page: the CPU fallback must then pass the same checks.
import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
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
  check(interactiveMs <= interactiveBudgetMs, `page interactive in ${interactiveMs} ms (budget ${interactiveBudgetMs} ms)`);
  console.log(`self-check finished ${selftestMs} ms after navigation; screenshot: ${shot}`);
  if (failures.length) console.log(`browser console:\n${logs.join('\n')}`);
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
if (failures.length) { console.log(`${failures.length} check(s) failed`); process.exit(1); }
console.log('all browser checks passed');
