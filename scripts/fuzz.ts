// `npm run fuzz -- [--target <name>|all] [--runs N] [--seed S] [--bound-ms B] [--no-save]`: fuzzes the parsers of files a
// person brings (src/fuzz/targets.ts) and prints a table: target, runs, crashes, hangs, max ms, peak MB.
// Each target runs in a worker thread watched by this thread: an input that never returns (an endless loop) is
// killed after 10× the bound, recorded as a hang, and the run continues with the next input in a fresh worker.
// Crashing and hanging inputs are saved to src/fuzz/corpus/<target>/ (replayed by src/fuzz/fuzz.test.ts).
// Exits non-zero when anything crashed or hung.
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { DEFAULT_BOUND_MS, fuzz, generate, saveFinding, type Finding, type FuzzStats } from '../src/fuzz/fuzz.ts';
import { TARGETS, targetByName } from '../src/fuzz/targets.ts';

interface Job { target: string; runs: number; seed: number; boundMs: number; from: number; heartbeat: SharedArrayBuffer }
type Message = { type: 'finding'; finding: Finding } | { type: 'done'; stats: FuzzStats };

if (!isMainThread) {
  const job = workerData as Job;
  const beat = new Int32Array(job.heartbeat);
  const stats = await fuzz({
    ...job,
    onInput: (index) => Atomics.store(beat, 0, index),
    onFinding: (finding) => parentPort!.postMessage({ type: 'finding', finding } satisfies Message),
  });
  parentPort!.postMessage({ type: 'done', stats: { ...stats, findings: [] } } satisfies Message);
} else {
  await main();
}

/** One worker over inputs [from, runs); resolves with its stats, or with `stuckAt` when an input never returned. */
function runWorker(job: Omit<Job, 'heartbeat'>, onFinding: (f: Finding) => void): Promise<{ stats?: FuzzStats; stuckAt?: number; stuckMs?: number }> {
  const heartbeat = new SharedArrayBuffer(4);
  const beat = new Int32Array(heartbeat);
  Atomics.store(beat, 0, job.from - 1);
  // tsx's loader does not carry over into worker threads: the worker registers it, then imports this file.
  const shim = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const worker = new Worker(shim, { eval: true, workerData: { ...job, heartbeat } });
  return new Promise((resolve, reject) => {
    let last = -2;
    let since = performance.now();
    const killAfter = Math.max(10 * job.boundMs, 5000);
    const timer = setInterval(() => {
      const now = Atomics.load(beat, 0);
      if (now !== last) { last = now; since = performance.now(); return; }
      if (performance.now() - since > killAfter) {
        clearInterval(timer);
        void worker.terminate();
        resolve({ stuckAt: now, stuckMs: performance.now() - since });
      }
    }, 100);
    worker.on('message', (m: Message) => {
      if (m.type === 'finding') onFinding(m.finding);
      else { clearInterval(timer); resolve({ stats: m.stats }); }
    });
    worker.on('error', (e) => { clearInterval(timer); reject(e); });
  });
}

async function fuzzTarget(name: string, runs: number, seed: number, boundMs: number, save: boolean): Promise<FuzzStats> {
  const total: FuzzStats = { target: name, runs: 0, ok: 0, rejected: 0, crashes: 0, hangs: 0, maxMs: 0, peakMB: 0, findings: [] };
  const record = (f: Finding) => {
    total.findings.push(f);
    total[f.kind === 'crash' ? 'crashes' : 'hangs']++;
    const path = save ? saveFinding(f) : '(not saved)';
    console.error(`  ${f.kind} at input ${f.index}: ${f.detail.slice(0, 160)} -> ${path}`);
  };
  let from = 0;
  while (from < runs) {
    const result = await runWorker({ target: name, runs, seed, boundMs, from }, record);
    if (result.stats) {
      const s = result.stats;
      total.runs += s.runs; total.ok += s.ok; total.rejected += s.rejected; // crashes and hangs: counted in record()
      total.maxMs = Math.max(total.maxMs, s.maxMs);
      total.peakMB = Math.max(total.peakMB, s.peakMB);
      break;
    }
    // An input that never returned: count the inputs before it (their findings were already reported), then go on.
    const index = result.stuckAt!;
    if (index < from) throw new Error(`${name}: a seed input (the warm-up before input ${from}) did not return within ${result.stuckMs!.toFixed(0)} ms`);
    total.runs += index - from + 1;
    total.maxMs = Math.max(total.maxMs, result.stuckMs!);
    record({ target: name, seed, index, kind: 'hang', detail: `did not return within ${result.stuckMs!.toFixed(0)} ms`, ms: result.stuckMs!, parts: generate(targetByName(name), seed, index) });
    from = index + 1;
  }
  return total;
}

async function main() {
  const { values } = parseArgs({
    options: {
      target: { type: 'string', default: 'all' },
      runs: { type: 'string', default: '1000' },
      seed: { type: 'string', default: '1' },
      'bound-ms': { type: 'string', default: String(DEFAULT_BOUND_MS) },
      'no-save': { type: 'boolean', default: false },
    },
  });
  const names = values.target === 'all' ? TARGETS.map((t) => t.name) : values.target!.split(',');
  names.forEach(targetByName); // unknown names fail before any work
  const [runs, seed, boundMs] = [Number(values.runs), Number(values.seed), Number(values['bound-ms'])];
  console.log(`fuzz: ${runs} inputs per target, seed ${seed}, time bound ${boundMs} ms per input`);
  const rows: FuzzStats[] = [];
  for (const name of names) {
    const start = performance.now();
    const s = await fuzzTarget(name, runs, seed, boundMs, !values['no-save']);
    console.log(`  ${name}: ${s.runs} inputs (${s.ok} accepted, ${s.rejected} refused), ${s.crashes} crashes, ${s.hangs} hangs in ${((performance.now() - start) / 1000).toFixed(1)} s`);
    rows.push(s);
  }
  console.log('\n| target | runs | crashes | hangs | max ms | peak MB |\n|---|---|---|---|---|---|');
  for (const s of rows) console.log(`| ${s.target} | ${s.runs} | ${s.crashes} | ${s.hangs} | ${s.maxMs.toFixed(1)} | ${s.peakMB.toFixed(0)} |`);
  process.exitCode = rows.some((s) => s.crashes + s.hangs > 0) ? 1 : 0;
}
