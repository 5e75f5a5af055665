// The npm package as a user gets it: `npm pack` in web/pkg/ (built by web/build.sh), the tarball
// installed offline into a fresh folder outside the repository, then the checks of
// test/npm-checks.mjs run against node_modules/bfrope:
// - in Node (no WebGPU there: the CPU path), initialised with initSync and the bytes of
//   'bfrope/bfrope_bg.wasm' (the package's exports map);
// - in headless Chromium on a page that imports the bare name 'bfrope' through an import map
//   made from the installed package.json's exports, once with WebGPU (SwiftShader when there
//   is no GPU) and once without (NO_WEBGPU hides navigator.gpu: the CPU path).
// Also checked: the tarball holds exactly the files the package lists, the version is the
// crate's, and the page's console stays free of errors.
// Usage (from web/): node test/package.mjs. KEEP_NPM_TMP=1 keeps the temporary folder.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const web = resolve(here, '..');
const root = resolve(web, '..');
const pkgDir = join(web, 'pkg');
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const timeoutMs = Number(process.env.SELFTEST_TIMEOUT_MS ?? 240000);

const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); };
const fail = (what) => { throw new Error(what); };

if (!existsSync(join(pkgDir, 'package.json'))) fail('web/pkg/package.json is missing: run bash web/build.sh first');
// The crate's version: `version = "..."` in Cargo.toml's [package] table.
let table = '', crateVersion;
for (const line of readFileSync(join(root, 'Cargo.toml'), 'utf8').split('\n')) {
  if (line.startsWith('[')) table = line.trim();
  const m = table === '[package]' && line.match(/^version\s*=\s*"([^"]+)"/);
  if (m) { crateVersion = m[1]; break; }
}
const tmp = mkdtempSync(join(tmpdir(), 'bfrope-npm-'));
const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });

let server, context;
try {
  // npm pack: the tarball and what it holds.
  const [packed] = JSON.parse(npm(['pack', '--json', '--pack-destination', tmp], pkgDir));
  const tarball = join(tmp, packed.filename);
  const files = packed.files.map((f) => f.path).sort();
  console.log(`${packed.filename}: ${packed.size} bytes packed, ${packed.unpackedSize} unpacked, ${packed.entryCount} files`);
  for (const f of packed.files) console.log(`     ${String(f.size).padStart(8)}  ${f.path}`);
  const want = ['LICENSE-APACHE', 'LICENSE-MIT', 'README.md', 'bfrope.d.ts', 'bfrope.js', 'bfrope_bg.wasm',
    'bfrope_bg.wasm.d.ts', 'package.json'];
  check(JSON.stringify(files) === JSON.stringify(want), `tarball holds ${files.join(', ')}`);
  check(packed.name === 'bfrope' && packed.version === crateVersion, `package ${packed.name}@${packed.version}, the crate's version ${crateVersion}`);

  // A fresh project that installs the tarball, offline.
  const app = join(tmp, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'bfrope-npm-check', private: true, type: 'module' }, null, 2));
  npm(['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], app);
  const installed = join(app, 'node_modules', 'bfrope');
  const meta = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
  check(meta.type === 'module' && existsSync(join(installed, meta.types)) && existsSync(join(installed, meta.main)),
    `installed package.json: type ${meta.type}, main ${meta.main}, types ${meta.types} (both present)`);
  copyFileSync(join(here, 'npm-checks.mjs'), join(app, 'npm-checks.mjs'));

  // Node: the bare name resolves through node_modules; the wasm through the exports map.
  writeFileSync(join(app, 'node-check.mjs'), `import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as bfrope from 'bfrope';
import { runChecks } from './npm-checks.mjs';
bfrope.initSync({ module: await readFile(fileURLToPath(import.meta.resolve('bfrope/bfrope_bg.wasm'))) });
console.log(JSON.stringify(await runChecks(bfrope)));
`);
  console.log('== Node: import "bfrope" from the installed package ==');
  let nodeRun;
  try {
    nodeRun = JSON.parse(execFileSync(process.execPath, ['node-check.mjs'], { cwd: app, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop());
  } catch (e) {
    fail(`Node could not run the package's checks: ${e.message}`);
  }
  for (const r of nodeRun.results) check(r.ok, `node (${nodeRun.backend}): ${r.what}`);

  // The browser: a page served from the fresh folder, 'bfrope' mapped to the package's entry.
  const entry = meta.exports?.['.']?.default ?? meta.exports?.['.']?.import ?? meta.module ?? meta.main;
  const importMap = { imports: { bfrope: `./node_modules/bfrope/${entry.replace(/^\.\//, '')}` } };
  writeFileSync(join(app, 'index.html'), `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bfrope from npm</title><link rel="icon" href="data:,">
<script type="importmap">${JSON.stringify(importMap)}</script></head>
<body><pre id="out">running</pre>
<script type="module">
import init, * as bfrope from 'bfrope';
import { runChecks } from './npm-checks.mjs';
try {
  await init();
  window.RESULT = await runChecks(bfrope);
} catch (e) {
  window.RESULT = { error: String(e && e.stack || e) };
}
document.getElementById('out').textContent = JSON.stringify(window.RESULT, null, 1);
document.body.dataset.status = window.RESULT.failures === 0 ? 'pass' : 'fail';
</script></body></html>
`);
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm',
    '.json': 'application/json', '.ts': 'text/plain', '.md': 'text/plain' };
  server = createServer((req, res) => {
    const path = normalize(join(app, decodeURIComponent(new URL(req.url, 'http://x').pathname)));
    const file = path.endsWith(sep) ? join(path, 'index.html') : path;
    if (!file.startsWith(app + sep) || !existsSync(file)) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${server.address().port}/`;

  const env = { ...process.env };
  delete env.VK_DRIVER_FILES;
  delete env.VK_ICD_FILENAMES;
  const args = [
    '--headless=new', '--no-sandbox', '--enable-unsafe-webgpu',
    '--enable-features=Vulkan', '--use-angle=swiftshader', '--use-webgpu-adapter=swiftshader',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run', '--no-default-browser-check',
    ...(process.env.CHROMIUM_ARGS ? process.env.CHROMIUM_ARGS.split(' ') : []),
  ];
  context = await chromium.launchPersistentContext(join(tmp, 'chromium'), { executablePath, args, env, headless: true });
  for (const noWebGpu of [false, true]) {
    console.log(`== Chromium${noWebGpu ? ' without WebGPU' : ''}: a page importing "bfrope" through an import map ==`);
    const page = await context.newPage();
    if (noWebGpu) await page.addInitScript(() => { delete Object.getPrototypeOf(navigator).gpu; });
    const logs = [];
    page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
    page.on('requestfailed', (r) => logs.push(`[requestfailed] ${r.url()}`));
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForFunction(() => ['pass', 'fail'].includes(document.body.dataset.status), null, { timeout: timeoutMs });
    const run = await page.evaluate(() => window.RESULT);
    const tag = `chromium (${run.backend ?? 'no backend'})`;
    check(!run.error, `${tag}: the page ran${run.error ? `: ${run.error}` : ''}`);
    for (const r of run.results ?? []) check(r.ok, `${tag}: ${r.what}`);
    if (noWebGpu) check(run.backend === 'cpu', `${tag}: without navigator.gpu the CPU path runs`);
    else if (run.backend !== 'webgpu') console.log('note: WebGPU was not available; the CPU path ran');
    const errors = logs.filter((l) => /^\[(error|pageerror|requestfailed)\]/.test(l));
    check(errors.length === 0, `${tag}: no console errors or failed requests (${errors.length}${errors.length ? `: ${errors.slice(0, 3).join(' | ')}` : ''})`);
    if (failures.length) console.log(`browser console:\n${logs.join('\n')}`);
    await page.close();
  }
} catch (e) {
  check(false, e.message);
} finally {
  await context?.close();
  server?.close();
  if (process.env.KEEP_NPM_TMP === '1') console.log(`kept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
}
if (failures.length) { console.log(`${failures.length} package check(s) failed`); process.exit(1); }
console.log('all npm package checks passed');
