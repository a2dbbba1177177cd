// `npm run bench:fullsize -- --family sd15|sdxl --browser [--model /work/tmp/<family>-fullsize-prepared]`: a prepared
// full-size model loaded by URL through the page's own worker (src/worker/worker.ts, the one engine) in headless Chromium with
// WebGPU (SwiftShader here), measured per configuration:
//   plain  — no η, no δ (standard CFG: the manifest served without offsets)
//   lora   — δ LoRA only at α = 1 (the manifest served without its η, so η is never read)
//   dense  — dense η and δ at α = 0.5 (the manifest as prepared)
// The app is built (vite build) and served by vite preview on 127.0.0.1 with one extra middleware: /bench-model/<config>/
// serves the model directory (its manifest rewritten per configuration), and the worker chunk is served with
// probe.ts's counters prepended (GPU buffers created/destroyed, uploads, read-backs, WASM heaps, the worker's events).
// The worker's JS heap is sampled through CDP (Runtime.getHeapUsage on the worker target) while it loads.
// The text encoders are stand-ins (standin.ts): SD1.5's prepared directory carries the tiny fixture's [B,77,32] one
// and is served as a copy with a 768-wide one; SDXL's is prepared from an export with 768- and 1280-wide ones.
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { chromium, type BrowserContext, type Page, type Worker } from '@playwright/test';
import { build, preview, type Plugin } from 'vite';
import { probedWorker } from '../probed-worker.ts';
import { makeStandInModel } from './standin.ts';

export interface BrowserBenchOptions {
  family: string;
  model: string;
  /** Where the stand-in copy of the model is made. */
  standIn: string;
  configs: string[];
  width: number;
  steps: number;
  /** Minutes a load, and a generation, may take before the configuration is given up. */
  loadMinutes: number;
  generateMinutes: number;
  /** Stop after 'ready' (no generation, no moves): GPU bytes after load only. */
  loadOnly: boolean;
  port: number;
}

interface Config { name: string; label: string; offsets: (o: Record<string, unknown>) => Record<string, unknown>; alpha: number; moves: { what: string; testId: string; value: number }[] }

const CONFIGS: Record<string, Config> = {
  plain: { name: 'plain', label: 'plain CFG (no η, no δ)', offsets: () => ({}), alpha: 1, moves: [] },
  lora: {
    name: 'lora', label: 'δ LoRA only, α = 1 (no η)', offsets: (o) => ({ ...(o.delta ? { delta: o.delta } : {}) }), alpha: 1,
    moves: [{ what: 'α', testId: 'slider-alpha', value: 0.5 }, { what: 'β', testId: 'slider-beta', value: 0.5 }, { what: 'ω', testId: 'slider-omega', value: 5 }],
  },
  dense: {
    name: 'dense', label: 'dense η + δ LoRA, α = 0.5', offsets: (o) => o, alpha: 0.5,
    moves: [{ what: 'α', testId: 'slider-alpha', value: 0.75 }, { what: 'β', testId: 'slider-beta', value: 0.5 }, { what: 'ω', testId: 'slider-omega', value: 5 }],
  },
};

const mb = (b?: number) => (b === undefined || !Number.isFinite(b) ? '—' : `${(b / 1e6).toFixed(b < 1e7 ? 2 : 0)} MB`);
const gb = (b?: number) => (b === undefined || !Number.isFinite(b) ? '—' : `${(b / 1e9).toFixed(2)} GB`);
const secs = (ms?: number) => (ms === undefined ? '—' : `${(ms / 1000).toFixed(1)} s`);
const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

function memAvailable(): number {
  const line = readFileSync('/proc/meminfo', 'utf8').split('\n').find((l) => l.startsWith('MemAvailable:'));
  return line ? Number(line.split(/\s+/)[1]) * 1024 : Infinity;
}

/** Probe snapshot (probe.ts). */
interface Snapshot {
  installedAt: number; liveBytes: number; peakBytes: number; buffers: number; liveBuffers: number; uploads: number; uploadBytes: number;
  writeBufferBytes: number; mappedAtCreationBytes: number; readBacks: number; readBackBytes: number; wasmHeaps: number[];
  requests: { type: string; id?: number; at: number; params?: Record<string, unknown> }[];
  events: { type: string; id?: number; at: number; stats?: Record<string, any>; milliseconds?: number; message?: string; model?: Record<string, unknown>; notice?: string }[];
}

/** The extra middleware: the model per configuration (the worker chunk with the probe in front: probedWorker). */
function benchServer(modelDir: string, manifest: Record<string, any>): Plugin {
  return {
    name: 'bench-fullsize-browser',
    configurePreviewServer(server) {
      server.middlewares.use((req, res, next) => {
        const path = decodeURIComponent((req.url ?? '').split('?')[0]);
        const model = /^\/bench-model\/(\w+)\/(.+)$/.exec(path);
        if (!model) return next();
        const config = CONFIGS[model[1]];
        if (!config) return next();
        if (model[2] === 'manifest.json') {
          const body = Buffer.from(JSON.stringify({ ...manifest, offsets: config.offsets(manifest.offsets ?? {}) }));
          res.setHeader('Content-Type', 'application/json');
          res.setHeader('Content-Length', body.byteLength);
          return res.end(body);
        }
        const file = normalize(join(modelDir, model[2]));
        if (!file.startsWith(modelDir) || !existsSync(file) || !statSync(file).isFile()) return next();
        res.setHeader('Content-Length', statSync(file).size);
        res.setHeader('Content-Type', 'application/octet-stream');
        createReadStream(file).pipe(res);
      });
    },
  };
}

/** The worker target's JS heap through CDP (the page's session, non-flat auto-attach, messages relayed by Target.*). */
async function workerHeap(page: Page) {
  const cdp = await page.context().newCDPSession(page);
  let session: string | undefined;
  let nextId = 1;
  const waiting = new Map<number, (result: any) => void>();
  cdp.on('Target.attachedToTarget', (event: any) => {
    if (event.targetInfo.type === 'worker' && /worker-/.test(event.targetInfo.url) && !/clip-worker|prepare-worker/.test(event.targetInfo.url)) session = event.sessionId;
  });
  cdp.on('Target.receivedMessageFromTarget', (event: any) => {
    const message = JSON.parse(event.message);
    if (message.id && waiting.has(message.id)) waiting.get(message.id)!(message.result ?? { error: message.error });
  });
  await cdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  return {
    async usage(): Promise<{ usedSize: number; totalSize: number } | undefined> {
      if (!session) return undefined;
      const id = nextId++;
      const result = new Promise<any>((resolve) => {
        waiting.set(id, resolve);
        setTimeout(() => resolve(undefined), 10_000);
      });
      await cdp.send('Target.sendMessageToTarget', { sessionId: session, message: JSON.stringify({ id, method: 'Runtime.getHeapUsage' }) }).catch(() => undefined);
      const r = await result;
      waiting.delete(id);
      return r && 'usedSize' in r ? r : undefined;
    },
    attached: () => session !== undefined,
  };
}

interface Move { what: string; generations: number; uploadBytes: number; writeBufferBytes: number; uploads: number; readBacks: number; ms: number; merge?: Record<string, number>; error?: string }
interface Row {
  config: Config; loadMs?: number; heapPeak?: number; heapAfterLoad?: number; wasmHeap?: number; ours?: number; all?: number; peakAll?: number;
  firstGenerationMs?: number; generationMs?: number; readBacks?: number; probeReadBacks?: number; unetCalls?: number; moves: Move[]; failed?: string; notice?: string;
  loadUploadBytes?: number; allAfterLoad?: number; peakAfterLoad?: number; memAvailableBefore: number; memAvailableAfterLoad?: number;
}

async function snapshot(worker: Worker): Promise<Snapshot> {
  return worker.evaluate(() => (globalThis as unknown as { __bench: { snapshot(): Snapshot } }).__bench.snapshot());
}

/** Waits until every generate request the worker got has its outcome (done, cancelled or error), then a quiet second. */
async function waitIdle(worker: Worker, afterRequests: number, minutes: number): Promise<Snapshot> {
  const deadline = Date.now() + minutes * 60_000;
  for (;;) {
    const s = await snapshot(worker);
    const generates = s.requests.filter((r) => r.type === 'generate');
    const outcome = (id?: number) => s.events.some((e) => e.id === id && ['done', 'cancelled', 'error'].includes(e.type));
    const fatal = s.events.find((e) => e.type === 'error' && e.id === undefined);
    if (fatal) throw new Error(`worker error: ${fatal.message}`);
    if (generates.length > afterRequests && generates.every((r) => outcome(r.id))) {
      await new Promise((r) => setTimeout(r, 1500));
      const again = await snapshot(worker);
      if (again.requests.filter((r) => r.type === 'generate').length === generates.length) return again;
      continue;
    }
    if (Date.now() > deadline) throw new Error(`no generation finished within ${minutes} min (${generates.length} requested, ${s.events.filter((e) => e.type === 'done').length} done)`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function runConfig(context: BrowserContext, origin: string, config: Config, options: BrowserBenchOptions): Promise<Row> {
  const row: Row = { config, moves: [], memAvailableBefore: memAvailable() };
  const page = await context.newPage();
  page.on('pageerror', (e) => log(`[page error] ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && !/\[W:onnxruntime|onnxruntime.*warning/i.test(m.text())) log(`[console.error] ${m.text().slice(0, 400)}`); });
  try {
    const heap = await workerHeap(page);
    const workerReady = new Promise<Worker>((resolve) => page.on('worker', (w) => { if (/\/worker-/.test(w.url())) resolve(w); }));
    const query = new URLSearchParams({
      backend: 'webgpu', model: `${origin}/bench-model/${config.name}/`, width: String(options.width), height: String(options.width),
      steps: String(options.steps), alpha: String(config.alpha), beta: '1', omega: '6.5', seed: '42', scheduler: 'ddim', previews: 'off', prompt: 'a photo of a cat',
    });
    const opened = Date.now();
    await page.goto(`${origin}/?${query}`);
    const worker = await workerReady;
    let peak = 0;
    const samples: number[] = [];
    const deadline = opened + options.loadMinutes * 60_000;
    let ready: Snapshot['events'][number] | undefined;
    let lastLog = 0;
    for (;;) {
      const used = (await heap.usage())?.usedSize;
      if (used !== undefined) (peak = Math.max(peak, used)), samples.push(used);
      const s = await snapshot(worker).catch(() => undefined);
      ready = s?.events.find((e) => e.type === 'ready');
      const fatal = s?.events.find((e) => e.type === 'error' && e.id === undefined);
      if (fatal) throw new Error(`load failed: ${fatal.message}`);
      if (ready) break;
      if (Date.now() - lastLog > 30_000) {
        lastLog = Date.now();
        const status = await page.getByTestId('status').textContent().catch(() => '');
        log(`${config.name}: loading ${secs(Date.now() - opened)}: heap ${mb(used)}, GPU live ${gb(s?.liveBytes)}, avail ${gb(memAvailable())}; ${status?.slice(0, 120)}`);
      }
      if (Date.now() > deadline) throw new Error(`not ready within ${options.loadMinutes} min`);
      await new Promise((r) => setTimeout(r, 500));
    }
    row.loadMs = ready.at - opened;
    row.heapPeak = peak;
    row.notice = ready.notice;
    const afterLoad = await snapshot(worker);
    row.heapAfterLoad = (await heap.usage())?.usedSize;
    row.wasmHeap = Math.max(0, ...afterLoad.wasmHeaps);
    row.loadUploadBytes = afterLoad.uploadBytes;
    row.allAfterLoad = afterLoad.liveBytes;
    row.peakAfterLoad = afterLoad.peakBytes;
    row.memAvailableAfterLoad = memAvailable();
    log(`${config.name}: ready in ${secs(row.loadMs)}; heap peak ${mb(peak)} (${samples.length} samples${heap.attached() ? '' : ', worker target not attached'}), after ${mb(row.heapAfterLoad)}; WASM ${mb(row.wasmHeap)}; GPU live ${gb(afterLoad.liveBytes)}; avail ${gb(row.memAvailableAfterLoad)}`);

    if (options.loadOnly) return row;
    // The page generates both images once ready.
    const first = await waitIdle(worker, 0, options.generateMinutes);
    const done = first.events.filter((e) => e.type === 'done');
    const last = done.at(-1);
    if (!last) throw new Error(`first generation failed: ${first.events.filter((e) => e.type === 'error').map((e) => e.message).join('; ')}`);
    row.firstGenerationMs = last.at - ready.at;
    row.generationMs = last.milliseconds;
    row.readBacks = last.stats?.readBacks;
    row.unetCalls = last.stats?.unetCalls;
    row.ours = last.stats?.liveBufferBytes;
    row.all = first.liveBytes;
    row.peakAll = first.peakBytes;
    row.probeReadBacks = first.readBacks - afterLoad.readBacks;
    log(`${config.name}: first generation ${secs(row.generationMs)} (worker), ${done.length} done; stats ${JSON.stringify(last.stats)}; GPU live ${gb(first.liveBytes)} (peak ${gb(first.peakBytes)})`);

    let before = first;
    for (const move of config.moves) {
      const requests = before.requests.filter((r) => r.type === 'generate').length;
      const t = Date.now();
      try {
        await page.getByTestId(move.testId).fill(String(move.value));
        const after = await waitIdle(worker, requests, options.generateMinutes);
        const newDone = after.events.slice(before.events.length).filter((e) => e.type === 'done');
        row.moves.push({
          what: move.what, generations: newDone.length, uploadBytes: after.uploadBytes - before.uploadBytes, writeBufferBytes: after.writeBufferBytes - before.writeBufferBytes,
          uploads: after.uploads - before.uploads, readBacks: after.readBacks - before.readBacks, ms: Date.now() - t, merge: newDone.at(-1)?.stats?.merge,
        });
        log(`${config.name}: ${move.what} → ${move.value}: ${newDone.length} generation(s), ${after.uploadBytes - before.uploadBytes} B uploaded in ${after.uploads - before.uploads} uploads, ${secs(Date.now() - t)}; merge ${JSON.stringify(newDone.at(-1)?.stats?.merge)}`);
        before = after;
      } catch (error) {
        row.moves.push({ what: move.what, generations: 0, uploadBytes: NaN, writeBufferBytes: NaN, uploads: 0, readBacks: 0, ms: Date.now() - t, error: String(error) });
        log(`${config.name}: ${move.what} move failed: ${error}`);
        break;
      }
    }
  } catch (error) {
    row.failed = error instanceof Error ? error.message : String(error);
    log(`${config.name}: FAILED: ${row.failed}`);
  } finally {
    await page.close().catch(() => undefined);
  }
  return row;
}

export async function runBrowserBench(options: BrowserBenchOptions) {
  const { dir, manifest, made, standIn } = makeStandInModel(options.model, options.standIn);
  const encoders = manifest.sdxl ? `text encoders ${manifest.sdxl.hiddenDims.join(' + ')} wide, as prepared` : `${made ? 'stand-in text encoder written' : 'stand-in reused'}: [49408, ${manifest.context.dim}] table`;
  log(`model: ${options.model}${standIn ? ` → ${dir}` : ''} (${encoders})`);
  const unetBytes = manifest.files.filter((f: { path: string }) => f.path.startsWith('unet/')).reduce((a: number, f: { bytes: number }) => a + f.bytes, 0);
  const etaBytes = (manifest.offsets?.eta?.files ?? []).reduce((a: number, p: string) => a + (manifest.files.find((f: { path: string }) => f.path === p)?.bytes ?? 0), 0);

  await build({ logLevel: 'warn' });
  const server = await preview({ preview: { port: options.port, host: '127.0.0.1', strictPort: true }, plugins: [probedWorker(), benchServer(dir, manifest)] });
  const origin = `http://127.0.0.1:${options.port}`;
  const profile = mkdtempSync(join(tmpdir(), 'bench-fullsize-profile-'));
  const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  // A persistent profile: the page's model cache (Cache API) on disk, as a person's browser has it (an incognito
  // context would keep gigabytes of cached model files in memory).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath, headless: true,
    args: ['--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'],
  });
  const chromiumVersion = context.browser()?.version() ?? execFileSync(executablePath, ['--version'], { encoding: 'utf8' }).trim();
  const rows: Row[] = [];
  try {
    for (const name of options.configs) {
      const config = CONFIGS[name];
      if (!config) throw new Error(`unknown configuration ${name} (plain, lora, dense)`);
      if (name === 'dense') {
        // θ_pos and θ_neg (every UNet weight η touches), θ and η, all in Chromium's GPU process under SwiftShader.
        const need = 3 * unetBytes + etaBytes;
        const available = memAvailable();
        log(`dense: needs roughly ${gb(need)} (θ, θ_pos, θ_neg, η) in the GPU process; ${gb(available)} available now\n${execFileSync('free', ['-g'], { encoding: 'utf8' })}`);
        if (need > available) {
          rows.push({ config, moves: [], failed: `skipped: needs ~${gb(need)}, ${gb(available)} available`, memAvailableBefore: available });
          continue;
        }
      }
      rows.push(await runConfig(context, origin, config, options));
    }
  } finally {
    await context.close().catch(() => undefined);
    rmSync(profile, { recursive: true, force: true });
    await new Promise<void>((resolve) => server.httpServer.close(() => resolve()));
  }

  const plain = rows.find((r) => r.config.name === 'plain' && !r.failed);
  const moveCell = (r: Row, what: string) => {
    const m = r.moves.find((x) => x.what === what);
    if (!m) return '—';
    if (m.error) return `failed`;
    return `${m.uploadBytes.toLocaleString('en')} B, of it writeBuffer ${m.writeBufferBytes.toLocaleString('en')} B (${m.generations} gen.)`;
  };
  console.log(`\n${options.family} full-size in Chromium ${chromiumVersion} (headless, WebGPU on SwiftShader), ${manifest.name}: UNet ${gb(unetBytes)}, dense η ${gb(etaBytes)}; generations at ${options.width}² (${options.width / 8}×${options.width / 8} latents), ${options.steps} step, DDIM`);
  console.log(`GPU "ours" = the engine's tracker (GenerationStats.liveBufferBytes, 'done' event); "all" = every buffer the worker's GPUDevice created and has not destroyed (GPUDevice.prototype.createBuffer / GPUBuffer.prototype.destroy wrapped in the worker), after the first generation; "ORT's" = all − ours.`);
  console.log(`Uploads: GPUQueue.prototype.writeBuffer bytes + buffers created mappedAtCreation, from the move to the end of the generation(s) it started. Read-backs: GenerationStats.readBacks (probe: mapAsync(READ) calls, ORT's included).\n`);
  const header = ['configuration', 'load (open → ready)', 'worker JS heap peak (load)', 'JS heap after load', 'ORT WASM heap', 'GPU all after load (peak)', 'vs plain (after load)', 'GPU ours', 'GPU all', 'GPU ORT', 'GPU peak (all)', 'vs plain (all)', 'one generation', 'UNet calls', 'read-backs / gen. (probe)', 'α move upload', 'β move upload', 'ω move upload'];
  const lines = rows.map((r) => r.failed && r.loadMs === undefined
    ? [r.config.label, r.failed, ...header.slice(2).map(() => '')]
    : [
      r.config.label + (r.failed ? ` (failed later: ${r.failed.slice(0, 80)})` : ''), secs(r.loadMs), mb(r.heapPeak), mb(r.heapAfterLoad), mb(r.wasmHeap), `${gb(r.allAfterLoad)} (${gb(r.peakAfterLoad)})`, plain?.allAfterLoad && r.allAfterLoad ? `${(r.allAfterLoad / plain.allAfterLoad).toFixed(3)}×` : '—', gb(r.ours), gb(r.all), gb(r.all !== undefined && r.ours !== undefined ? r.all - r.ours : undefined), gb(r.peakAll),
      plain?.all && r.all ? `${(r.all / plain.all).toFixed(3)}×` : '—', secs(r.generationMs), String(r.unetCalls ?? '—'), `${r.readBacks ?? '—'} (${r.probeReadBacks ?? '—'})`,
      moveCell(r, 'α'), moveCell(r, 'β'), moveCell(r, 'ω'),
    ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  console.log([line(header), line(header.map((_, i) => (i ? '---:' : '---'))), ...lines.map(line)].join('\n'));
  const lora = rows.find((r) => r.config.name === 'lora' && r.allAfterLoad !== undefined);
  const dense = rows.find((r) => r.config.name === 'dense' && r.allAfterLoad !== undefined);
  console.log('\nGoals:');
  if (lora && plain?.allAfterLoad) console.log(`- δ only at α = 1 vs plain CFG, GPU bytes after load (all): ${(lora.allAfterLoad! / plain.allAfterLoad).toFixed(3)}× (goal ≤ 1.12×)`);
  if (lora && plain?.all) console.log(`- δ only at α = 1 vs plain CFG, GPU bytes (all): ${(lora.all! / plain.all).toFixed(3)}× (goal ≤ 1.12×); ours ${(lora.ours! / plain.ours!).toFixed(3)}×`);
  if (lora) console.log(`- δ only, worker JS heap after load: ${mb(lora.heapAfterLoad)} (goal ≤ 300 MB); peak during load ${mb(lora.heapPeak)}`);
  if (dense) console.log(`- dense η at α = 0.5, GPU bytes (all${dense.all === undefined ? ', after load' : ''}): ${gb(dense.all ?? dense.allAfterLoad)} = ${((dense.all ?? dense.allAfterLoad!) / unetBytes).toFixed(2)}× the UNet's ${gb(unetBytes)} (goal ≤ 3×); worker JS heap after load ${mb(dense.heapAfterLoad)}, peak ${mb(dense.heapPeak)} (η is ${gb(etaBytes)})`);
  for (const r of rows) {
    if (r.failed) console.log(`- ${r.config.label}: ${r.failed}`);
    if (r.notice) console.log(`- ${r.config.label}: page notice: ${r.notice}`);
    for (const m of r.moves) console.log(`- ${r.config.label}, ${m.what} move: ${m.error ?? `${m.generations} generation(s), ${m.uploads} uploads, ${m.uploadBytes} B (writeBuffer ${m.writeBufferBytes} B), ${m.readBacks} read-backs, ${secs(m.ms)}; merge ${JSON.stringify(m.merge)}`}`);
  }
  console.log(`\nmachine: ${gb(memAvailable())} available now; 2 cores; one run each`);
}
