// `npm run bench:train:browser -- --plan-check` (issue 27): the training memory plan (src/train/memory-plan.ts) against
// what the page's own "Train your own δ" flow allocates in Chromium, per cell (backend, model, batch, latent size,
// checkpointing). The worker chunk is served with probe.ts's counters and TRAIN_PROBE in front (scripts/probed-worker.ts);
// each cell is a fresh page (a fresh worker, WASM heap and GPU device), trained a few steps once the page is idle.
// Measured, from the 'train' request to the worker's 'train-done' (graph building, the encoders' sessions, the
// training session's creation, the steps and its release):
//   wasm    growth of ORT's WASM heap (WebAssembly.Memory byteLength: it never shrinks, so the end is the peak);
//   webgpu  peak bytes of GPU buffers alive (every GPUDevice of the worker: ours and ORT's WebGPU EP) above those
//           alive at the request.
// Planned: the plan the worker made (prepared models: its 'train-plan' line, recomputed here with the same function
// and inputs for the byte counts, and checked equal to the page's line); the embedded model's training is not planned
// by the worker, so its row is planTrainingMemory for the same graph, as the Node grid (bench-train-sd.ts) does it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from '@playwright/test';
import { build, preview } from 'vite';
import { isPrepared, parseManifest, type PreparedManifest } from '../src/model/manifest.ts';
import { readModel } from '../src/onnx/model-io.ts';
import { encodePairs } from '../src/train/pairs.ts';
import { ARENA_FACTOR, planTrainingMemory, planTrainingRun, type DeviceLimits, type TrainMemoryPlan } from '../src/train/memory-plan.ts';
import { predictionTypeOf } from '../src/train/train-lora.ts';
import type { CheckpointChoice } from '../src/train/unet-segments.ts';
import { modelWorker, probedWorker } from './probed-worker.ts';

/** In the worker, after probe.ts: marks of each training run (request, plan, steps, done), each with the GPU peak since the mark before. */
const TRAIN_PROBE = `(() => {
  const s = globalThis.__bench;
  const runs = s.training = [];
  const mark = (type, extra) => {
    const m = { type, at: Date.now(), liveBytes: s.liveBytes, peakBytes: s.peakBytes, wasmHeaps: s.wasmBytes(), ...extra };
    s.peakBytes = s.liveBytes; // the next mark's peak is of its own phase
    return m;
  };
  addEventListener('message', (message) => {
    const r = message.data;
    if (r && r.type === 'train') runs.push({ id: r.id, marks: [mark('request')], sizes: {} });
  });
  // Sizes of the GPU buffers created while a run is on (ORT's WebGPU EP rounds storage buffers up to its buckets).
  if (typeof GPUDevice !== 'undefined') {
    const createBuffer = GPUDevice.prototype.createBuffer;
    GPUDevice.prototype.createBuffer = function (descriptor) {
      const run = runs.at(-1);
      if (run && !run.marks.some((m) => m.type === 'train-done')) run.sizes[descriptor.size] = (run.sizes[descriptor.size] ?? 0) + 1;
      return createBuffer.call(this, descriptor);
    };
  }
  const post = globalThis.postMessage;
  globalThis.postMessage = function (event) {
    const run = event && runs.find((r) => r.id === event.id);
    if (run && /^(train-plan|train-progress|train-done|error|cancelled)$/.test(event.type)) {
      run.marks.push(mark(event.type, { summary: event.summary, message: event.message }));
    }
    return post.apply(this, arguments);
  };
})();`;

interface Mark { type: string; at: number; liveBytes: number; peakBytes: number; wasmHeaps: number[]; summary?: string; message?: string }

export interface Cell { backend: 'wasm' | 'webgpu'; model: 'embedded' | 'sd15'; batch: number; side: number; checkpoint: CheckpointChoice }

/** `backend/model/batch[/latent side/checkpoint]`, e.g. `wasm/embedded/8` or `webgpu/sd15/1/16/layers`. */
export function parseCell(spec: string): Cell {
  const [backend, model, batch, side, checkpoint] = spec.split('/');
  if (backend !== 'wasm' && backend !== 'webgpu') throw new Error(`cell ${spec}: backend wasm or webgpu`);
  if (model !== 'embedded' && model !== 'sd15') throw new Error(`cell ${spec}: model embedded or sd15`);
  return { backend, model, batch: Number(batch ?? 1), side: Number(side ?? 32), checkpoint: (checkpoint ?? 'auto') as CheckpointChoice };
}

// The grid measured for issue 27: WASM up to SD1.5's 512² latents (64², about a minute a cell), WebGPU up to 32²
// (SwiftShader on 2 cores: about 2 min a cell at 16², 12 min at 32²; some 50 min in all).
export const DEFAULT_CELLS = [
  'wasm/embedded/2', 'wasm/embedded/8', 'wasm/sd15/1/16', 'wasm/sd15/1/32', 'wasm/sd15/2/32', 'wasm/sd15/1/32/layers', 'wasm/sd15/1/48',
  'wasm/sd15/1/64/layers', 'wasm/sd15/1/64',
  'webgpu/embedded/1', 'webgpu/embedded/4', 'webgpu/sd15/1/16', 'webgpu/sd15/1/16/layers', 'webgpu/sd15/1/32', 'webgpu/sd15/1/32/layers',
].join(',');

interface Measured { marks: Mark[]; sizes: Record<string, number>; pageSummary?: string; error?: string; stepsDone: number }

const mib = (b?: number) => (b === undefined || !Number.isFinite(b) ? '—' : (b / 2 ** 20).toFixed(1));
const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** The tiny SD1.5 export prepared as a person would (npm run prepare-model), into `dir` unless it holds one already. */
function preparedSd15(dir = mkdtempSync(join(tmpdir(), 'plan-check-sd15-'))): string {
  if (!existsSync(join(dir, 'manifest.json'))) {
    log(`preparing fixtures/sd15/export-diffusers into ${dir}`);
    execFileSync('npx', ['tsx', '--import', './scripts/raw-imports.mjs', 'src/cli/prepare-model.ts', '--onnx', 'fixtures/sd15/export-diffusers', '--out', dir], { stdio: 'pipe' });
  }
  return dir;
}

/** Pairs at `size`² (a brighter winner, a darker loser) in a pairs.json the page reads. */
function pairsFile(prompt: string, size: number, count: number): string {
  const image = (v: number, k: number) => Float32Array.from({ length: 3 * size * size }, (_, i) => v + 0.2 * Math.sin(i / 7 + k));
  const pairs = Array.from({ length: count }, (_, k) => ({ prompt, winner: image(0.6, k), loser: image(-0.5, k) }));
  const path = join(mkdtempSync(join(tmpdir(), 'plan-pairs-')), 'pairs.json');
  writeFileSync(path, JSON.stringify(encodePairs(pairs, size, size)));
  return path;
}

/** What the worker plans against (worker.ts trainingLimits). */
const limitsOf = (backend: Cell['backend']): DeviceLimits => (backend === 'wasm' ? { memoryBytes: 4 * 2 ** 30 } : { budgetBytes: 8 * 2 ** 30 });

/** The plan of a cell, computed as the worker does (prepared) or as the Node grid does (embedded); summary null for the latter. */
function planOf(cell: Cell, rank: number, sd15Dir: string): { plan: TrainMemoryPlan; summary?: string; arena: boolean } {
  if (cell.model === 'sd15') {
    const manifest = JSON.parse(readFileSync(join(sd15Dir, 'manifest.json'), 'utf8')) as PreparedManifest;
    const unet = new Uint8Array(readFileSync(join(sd15Dir, manifest.unet.file)));
    const size = cell.side * manifest.latent.vaeScaleFactor;
    const run = planTrainingRun(manifest, unet, { width: size, height: size, batch: cell.batch, rank, weights: 'fp32' }, limitsOf(cell.backend), cell.checkpoint);
    return { plan: run.plan, summary: run.summary, arena: run.arena };
  }
  const manifest = parseManifest(readFileSync('models/manifest.json', 'utf8'));
  if (isPrepared(manifest)) throw new Error('models/ holds a prepared model');
  const { sampleSize, inChannels } = manifest.unet.config;
  const plan = planTrainingMemory(readModel(readFileSync(join('models', manifest.unet.file))), {
    batch: cell.batch, rank, latentDims: [inChannels, sampleSize, sampleSize], contextDims: [manifest.textEncoder.config.contextLength, manifest.textEncoder.config.hiddenSize],
    checkpoint: cell.checkpoint === 'auto' ? 'off' : cell.checkpoint, predictionType: predictionTypeOf(manifest),
  });
  return { plan, arena: true };
}

async function trainCell(browser: Browser, origin: string, cell: Cell, o: { steps: number; rank: number; minutes: number }): Promise<Measured> {
  const page = await browser.newPage();
  page.on('pageerror', (e) => log(`[page error] ${e.message}`));
  // ORT's word that a session put nodes on the CPU ("Some nodes were not assigned to the preferred execution
  // providers", one per session): their values live in the WASM heap, outside a WebGPU plan.
  let cpuNodes = 0;
  page.on('console', (m) => { if (/not assigned to the preferred execution providers/.test(m.text())) cpuNodes++; });
  page.on('close', () => cpuNodes && log(`${cpuNodes} session(s) of this page put nodes on ORT's CPU EP (onnxruntime's warning)`));
  try {
    const worker = modelWorker(page);
    const query = cell.model === 'sd15' ? `&model=${encodeURIComponent('/bench-model/')}&width=64&height=64` : '';
    await page.goto(`${origin}/?backend=${cell.backend}&steps=1&previews=off${query}`);
    await idle(page, o.minutes);
    const size = cell.model === 'sd15' ? cell.side * 8 : 32;
    const prompt = cell.model === 'sd15' ? 'a red square' : parseManifest(readFileSync('models/manifest.json', 'utf8')).defaults.prompt;
    await page.getByTestId('pairs-file').setInputFiles(pairsFile(prompt, size, Math.max(4, cell.batch)));
    await page.getByTestId('train-steps').fill(String(o.steps));
    await page.getByTestId('train-batch').fill(String(cell.batch));
    await page.getByTestId('train-rank').fill(String(o.rank));
    await page.getByTestId('train-checkpoint').selectOption(cell.checkpoint);
    await page.getByTestId('train').click();
    const finished = page.getByTestId('use-trained').or(page.getByTestId('train-error'));
    await finished.first().waitFor({ timeout: o.minutes * 60_000 });
    const error = (await page.getByTestId('train-error').isVisible()) ? (await page.getByTestId('train-error').textContent()) ?? 'error' : undefined;
    const pageSummary = (await page.getByTestId('train-plan').textContent().catch(() => null)) ?? undefined;
    const stepsDone = JSON.parse((await page.getByTestId('train-status').getAttribute('data-losses')) ?? '[]').length;
    const runs = await (await worker).evaluate(() => (globalThis as unknown as { __bench: { training: { marks: Mark[]; sizes: Record<string, number> }[] } }).__bench.training);
    const marks = runs.at(-1)?.marks ?? [];
    if (marks.length < 2) throw new Error(`no training run seen by the probe${error ? `: ${error}` : ''}`);
    return { marks, sizes: runs.at(-1)!.sizes, pageSummary, error, stepsDone };
  } finally {
    await page.close().catch(() => undefined);
  }
}

/** The page has its model and no generation running. */
async function idle(page: Page, minutes: number) {
  await page.locator('main[data-status="ready"]').waitFor({ timeout: minutes * 60_000 });
}

/**
 * The storage-buffer buckets of ORT's WebGPU EP (onnxruntime/core/providers/webgpu/buffer_manager.cc, the default
 * 'bucket' cache mode): a request is rounded up to the next of these, and freed buffers are kept per bucket.
 */
const ORT_BUCKETS = new Set([64, 128, 256, 512, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576, 2097152, 4194304, 8388608, 12582912, 16777216, 26214400, 33554432, 44236800, 58982400, 67108864, 134217728, 167772160]);

/** Of the GPU buffers a run created: how many, and the share of their bytes at an ORT bucket size. */
function bucketShare(sizes: Record<string, number>): string {
  const entries = Object.entries(sizes).map(([size, count]) => [Number(size), count] as const);
  const bytes = sum(entries.map(([size, count]) => size * count));
  const bucketed = sum(entries.filter(([size]) => ORT_BUCKETS.has(size)).map(([size, count]) => size * count));
  return `${sum(entries.map(([, count]) => count))} buffers created, ${mib(bytes)} MiB, ${bytes ? ((100 * bucketed) / bytes).toFixed(0) : 0} % of it at ORT bucket sizes`;
}

/** [measured bytes, extra note] of a run's marks on its backend. */
function measure(cell: Cell, marks: Mark[]) {
  const start = marks[0];
  const end = marks.at(-1)!;
  const heapGrowth = sum(end.wasmHeaps) - sum(start.wasmHeaps);
  const gpuPeak = Math.max(...marks.slice(1).map((m) => m.peakBytes)) - start.liveBytes;
  const firstStep = marks.find((m) => m.type === 'train-progress');
  const heapAtFirstStep = firstStep ? sum(firstStep.wasmHeaps) - sum(start.wasmHeaps) : NaN;
  return {
    measured: cell.backend === 'wasm' ? heapGrowth : gpuPeak,
    heapBefore: sum(start.wasmHeaps), heapGrowth, heapAtFirstStep, gpuPeak, gpuLeft: end.liveBytes - start.liveBytes,
  };
}

export async function planCheck(o: { cells: string; steps: number; rank: number; port: number; minutes: number; sd15Dir?: string }) {
  const cells = o.cells.split(',').map(parseCell);
  const sd15Dir = cells.some((c) => c.model === 'sd15') ? preparedSd15(o.sd15Dir) : '';
  await build({ logLevel: 'warn' });
  const server = await preview({ preview: { port: o.port, host: '127.0.0.1', strictPort: true }, plugins: [probedWorker({ probes: [TRAIN_PROBE], folders: { '/bench-model/': sd15Dir } })] });
  const origin = `http://127.0.0.1:${o.port}`;
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium', args: ['--enable-unsafe-webgpu', '--disable-background-networking', '--no-first-run', '--disable-quic'] });
  const rows: string[][] = [];
  const details: string[] = [];
  try {
    for (const cell of cells) {
      const name = `${cell.backend}/${cell.model}/${cell.batch}${cell.model === 'sd15' ? `/${cell.side}²/${cell.checkpoint}` : ''}`;
      const t0 = Date.now();
      const { plan, summary, arena } = planOf(cell, o.rank, sd15Dir);
      let run: Measured;
      try {
        run = await trainCell(browser, origin, cell, o);
      } catch (error) {
        log(`${name}: FAILED ${error}`);
        rows.push([cell.backend, cell.model, '', String(cell.batch), cell.checkpoint, `failed: ${String(error).slice(0, 120)}`, '', '', '', '', '']);
        continue;
      }
      const m = measure(cell, run.marks);
      const same = summary === undefined ? 'not planned by the worker' : run.pageSummary === summary ? 'same as the page' : `page: ${run.pageSummary}`;
      log(`${name}: ${run.stepsDone} steps in ${((Date.now() - t0) / 1000).toFixed(0)} s${run.error ? `, error: ${run.error}` : ''}; plan ${mib(plan.totalBytes)} MiB (${same}); measured ${mib(m.measured)} MiB`);
      details.push(`${name}: ${summary ?? 'plan'} [${same}]; heap before ${mib(m.heapBefore)} MiB, growth by step 1 ${mib(m.heapAtFirstStep)}, at the end ${mib(m.heapGrowth)}; GPU peak above the request ${mib(m.gpuPeak)} MiB, left alive after ${mib(m.gpuLeft)}${cell.backend === 'webgpu' ? ` (${bucketShare(run.sizes)})` : ''}; marks ${run.marks.map((k) => `${k.type}@${((k.at - run.marks[0].at) / 1000).toFixed(1)}s heap ${mib(sum(k.wasmHeaps))} live ${mib(k.liveBytes)} peak ${mib(k.peakBytes)}`).join(', ')}`);
      log(details.at(-1)!); // the cell's numbers now, should a later cell not finish
      const input = cell.model === 'sd15' ? `4×${cell.side}×${cell.side} (${cell.side * 8}²)` : '3×32×32 (pixels)';
      const checkpoint = plan.checkpoint + (cell.checkpoint === 'auto' ? ' (auto)' : '');
      rows.push([
        cell.backend, cell.model === 'sd15' ? 'tiny SD1.5' : 'embedded', input, String(cell.batch), checkpoint,
        `${mib(plan.weightsBytes)} / ${mib(plan.activationsBytes)} / ${mib(plan.transientBytes)} / ${mib(plan.loraBytes)}`, mib(plan.totalBytes),
        arena ? `on (${ARENA_FACTOR}× plan ${mib(ARENA_FACTOR * plan.totalBytes)})` : 'off', mib(m.measured), (plan.totalBytes / m.measured).toFixed(2),
        [cell.backend === 'wasm' ? `heap before ${mib(m.heapBefore)}` : `WASM heap +${mib(m.heapGrowth)}`, run.error && `training error: ${run.error.slice(0, 100)}`].filter(Boolean).join('; '),
      ]);
    }
  } finally {
    await browser.close();
    await new Promise<void>((resolve) => server.httpServer.close(() => resolve()));
  }
  console.log(`\nTraining memory plan vs Chromium (headless ${process.env.CHROMIUM_PATH || '/usr/bin/chromium'}; WebGPU on SwiftShader), the page's "Train your own δ": ${o.steps} steps, rank ${o.rank}, NPO, fresh page per cell`);
  console.log('measured: wasm = growth of ORT\'s WASM heap from the train request to train-done; webgpu = peak bytes of GPU buffers alive (ours and ORT\'s) above those alive at the request\n');
  console.log('| backend | UNet | input | batch | checkpoint | planned MiB: weights / activations / transient / LoRA | planned MiB | ORT CPU arena | measured MiB | planned / measured | other |');
  console.log('|---|---|---|---|---|---|---:|---|---:|---:|---|');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
  console.log(`\n${details.map((d) => `- ${d}`).join('\n')}`);
}
