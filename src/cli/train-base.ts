// Trains the embedded base model from scratch (issue 5, item 2): text encoder + pixel-space UNet jointly, v-prediction
// MSE on procedural world samples with classifier-free-guidance dropout, on onnxruntime-node (CPU) running our own
// gradient graph (src/cli/base-graph.ts). AdamW with warm-up and cosine decay, an EMA of the weights (exported),
// checkpoints (safetensors) and --resume; at the end the EMA weights are written into models/ (src/cli/base-export.ts).
//
// Usage: npm run train:base -- [--steps 3000] [--batch 16] [--lr 1e-3] [--seed 0] [--cfg-dropout 0.1] [--min-snr 5] [--min-snr-form diffusers]
//          [--channels 16,32,64] [--attention 0,1,1]
//          [--ckpt-dir tmp/train-base] [--ckpt-every 250] [--resume <checkpoint.safetensors>] [--max-minutes M]
//          [--stop-at N] [--out models] [--no-export] [--threads 2]
// --steps sets the learning-rate schedule; --stop-at N (or --max-minutes) ends the run at step N of that schedule.
// --channels/--attention set the UNet's levels (blockOutChannels, crossAttention); a resumed run keeps its own.
// --min-snr γ weights the loss by Min-SNR-γ (base-data.ts); 0 (the default, the committed model's recipe) turns it off.
// --min-snr-form picks its form: snr-plus-one (the default, min(SNR + 1, γ)/(SNR + 1)) or diffusers (min(SNR, γ)/(SNR + 1)).
//        npm run train:base -- --export-only <checkpoint.safetensors> [--out models]
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { TINY_TEXT_ENCODER } from '../embedded/text-encoder.ts';
import { TINY_UNET, type UnetConfig } from '../embedded/unet.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../lora/safetensors.ts';
import { makeBatch, MIN_SNR_FORMS, minSnrDescription, type MinSnrForm } from './base-data.ts';
import { writeBaseModel } from './base-export.ts';
import { buildTrainingGraph } from './base-graph.ts';
import { createAdamW } from '../train/optimizer.ts';

/** Checkpoints written before --channels existed record no UNet config; they all had these levels. */
const PRE_CHANNELS_FLAG_UNET: UnetConfig = { ...TINY_UNET, blockOutChannels: [32, 64], crossAttention: [false, true] };

interface Options {
  steps: number; batch: number; lr: number; minLr: number; warmup: number; weightDecay: number; clip: number;
  ema: number; seed: number; cfgDropout: number; ckptDir: string; ckptEvery: number; logEvery: number;
  resume?: string; maxMinutes: number; stopAt: number; out: string; export: boolean; exportOnly?: string; threads: number;
  minSnr: number; minSnrForm: MinSnrForm; unet: UnetConfig;
}

/** "32,64,64" → [32, 64, 64]; every entry a non-negative integer (--attention takes 0/1 flags). */
function integerList(flag: string, text: string): number[] {
  const values = text.split(',').map(Number);
  if (!values.length || values.some((v) => !Number.isInteger(v) || v < 0)) throw new Error(`${flag} needs comma-separated integers, got "${text}"`);
  return values;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    steps: 3000, batch: 16, lr: 1e-3, minLr: 5e-5, warmup: 100, weightDecay: 0, clip: 1, ema: 0.999, seed: 0, cfgDropout: 0.1,
    ckptDir: 'tmp/train-base', ckptEvery: 250, logEvery: 10, maxMinutes: Infinity, stopAt: Infinity, out: 'models', export: true, threads: 2,
    minSnr: 0, minSnrForm: 'snr-plus-one', unet: TINY_UNET,
  };
  const numeric: Record<string, keyof Options> = {
    '--steps': 'steps', '--batch': 'batch', '--lr': 'lr', '--min-lr': 'minLr', '--warmup': 'warmup', '--weight-decay': 'weightDecay',
    '--clip': 'clip', '--ema': 'ema', '--seed': 'seed', '--cfg-dropout': 'cfgDropout', '--ckpt-every': 'ckptEvery',
    '--log-every': 'logEvery', '--max-minutes': 'maxMinutes', '--stop-at': 'stopAt', '--threads': 'threads', '--min-snr': 'minSnr',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a in numeric) {
      const v = Number(value());
      if (!Number.isFinite(v)) throw new Error(`${a} needs a number`);
      (o as unknown as Record<string, number>)[numeric[a]] = v;
    } else if (a === '--ckpt-dir') o.ckptDir = value();
    else if (a === '--resume') o.resume = value();
    else if (a === '--out') o.out = value();
    else if (a === '--export-only') o.exportOnly = value();
    else if (a === '--no-export') o.export = false;
    else if (a === '--min-snr-form') {
      const form = value();
      if (!(MIN_SNR_FORMS as readonly string[]).includes(form)) throw new Error(`--min-snr-form is one of ${MIN_SNR_FORMS.join(', ')}, got "${form}"`);
      o.minSnrForm = form as MinSnrForm;
    }
    else if (a === '--channels') o.unet = { ...o.unet, blockOutChannels: integerList(a, value()) };
    else if (a === '--attention') o.unet = { ...o.unet, crossAttention: integerList(a, value()).map((v) => v !== 0) };
    else throw new Error(`unknown option ${a}`);
  }
  if (o.unet.blockOutChannels.length !== o.unet.crossAttention.length) {
    throw new Error(`--channels has ${o.unet.blockOutChannels.length} levels but --attention ${o.unet.crossAttention.length}`);
  }
  return o;
}

/** Linear warm-up, then cosine decay from lr to minLr over the remaining steps. */
function learningRate(o: Options, step: number): number {
  if (step < o.warmup) return (o.lr * (step + 1)) / o.warmup;
  const progress = Math.min(1, (step - o.warmup) / Math.max(1, o.steps - o.warmup));
  return o.minLr + 0.5 * (o.lr - o.minLr) * (1 + Math.cos(Math.PI * progress));
}

/** State of training: weights, AdamW moments (src/train/optimizer.ts updates them in place), EMA, schedule segments. */
interface Segment { from: number; to: number; scheduleSteps: number }
interface TrainState { segments: Segment[]; step: number; weights: Map<string, Float32Array>; m: Map<string, Float32Array>; v: Map<string, Float32Array>; ema: Map<string, Float32Array>; seconds: number; losses: number[] }

/** EMA with the usual warm-up of the decay, min(ema, (1 + t)/(10 + t)), so early weights do not linger. */
function emaUpdate(s: TrainState, o: Options) {
  const d = Math.min(o.ema, (1 + s.step) / (10 + s.step));
  for (const [name, p] of s.weights) {
    const e = s.ema.get(name)!;
    for (let i = 0; i < p.length; i++) e[i] = d * e[i] + (1 - d) * p[i];
  }
}

function saveCheckpoint(path: string, s: TrainState, dims: Map<string, number[]>, o: Options) {
  const tensors = new Map<string, TensorToWrite>();
  for (const [prefix, map] of [['weight', s.weights], ['adam_m', s.m], ['adam_v', s.v], ['ema', s.ema]] as const) {
    for (const [name, data] of map) tensors.set(`${prefix}/${name}`, { shape: dims.get(name)!, data });
  }
  const meta = { segments: JSON.stringify(s.segments), step: String(s.step), seconds: s.seconds.toFixed(1), losses: JSON.stringify(s.losses), options: JSON.stringify({ ...o, resume: undefined }) };
  writeFileSync(`${path}.partial`, writeSafetensors(tensors, meta));
  renameSync(`${path}.partial`, path); // never leave a half-written checkpoint under the real name
}

function loadCheckpoint(path: string): TrainState & { options: Partial<Options> } {
  const file = readSafetensors(new Uint8Array(readFileSync(path)));
  const part = (prefix: string) => new Map([...file.tensors].filter(([k]) => k.startsWith(`${prefix}/`)).map(([k, t]) => [k.slice(prefix.length + 1), t.data]));
  const step = Number(file.metadata.step);
  if (!Number.isInteger(step) || step < 0) throw new Error(`${path}: checkpoint metadata has no valid step`);
  const options = JSON.parse(file.metadata.options ?? '{}') as Partial<Options>;
  // Checkpoints from before segments were recorded ran one segment with their own schedule.
  const segments: Segment[] = file.metadata.segments ? JSON.parse(file.metadata.segments) : [{ from: 0, to: step, scheduleSteps: options.steps ?? step }];
  return {
    segments, step, weights: part('weight'), m: part('adam_m'), v: part('adam_v'), ema: part('ema'),
    seconds: Number(file.metadata.seconds ?? 0), losses: JSON.parse(file.metadata.losses ?? '[]'), options,
  };
}

/** The command line(s) that reproduce a run: one per segment (a resumed run may have changed the schedule's length). */
function commandFor(segments: Segment[], opts: Options): string {
  const u = opts.unet;
  const common = `--batch ${opts.batch} --lr ${opts.lr} --seed ${opts.seed} --min-snr ${opts.minSnr} `
    + (opts.minSnr > 0 && opts.minSnrForm !== 'snr-plus-one' ? `--min-snr-form ${opts.minSnrForm} ` : '')
    + `--channels ${u.blockOutChannels.join(',')} --attention ${u.crossAttention.map(Number).join(',')}`;
  return segments.map((g, i) => `npm run train:base -- ${i > 0 ? '--resume tmp/train-base/checkpoint.safetensors ' : ''}--steps ${g.scheduleSteps}`
    + `${g.to < g.scheduleSteps ? ` --stop-at ${g.to}` : ''} ${common}${i < segments.length - 1 ? ' --no-export' : ''}`).join(' && ');
}

function exportModel(o: Options, ema: Map<string, Float32Array>, s: Pick<TrainState, 'step' | 'seconds' | 'losses' | 'segments'>, opts: Options) {
  const params = [...ema.values()].reduce((n, w) => n + w.length, 0);
  const recent = s.losses.slice(-10);
  const manifest = writeBaseModel(o.out, ema, opts.unet, {
    command: commandFor(s.segments, opts),
    steps: s.step, batchSize: opts.batch,
    learningRate: `AdamW ${opts.lr} (warm-up ${opts.warmup}, cosine to ${opts.minLr}), weight decay ${opts.weightDecay}, grad-norm clip ${opts.clip}`,
    cfgDropout: opts.cfgDropout, ema: opts.ema, seed: opts.seed, parameters: params,
    finalLoss: recent.reduce((a, b) => a + b, 0) / Math.max(1, recent.length),
    seconds: Math.round(s.seconds), machine: `${cpus().length}× ${cpus()[0]?.model ?? 'CPU'}, onnxruntime-node CPU EP`,
    data: 'src/world training split (captions with fnv1a(caption) % 10 ≠ 0), v-prediction MSE, uniform t, CFG dropout to the empty prompt'
      + (opts.minSnr > 0 ? `, ${minSnrDescription(opts.minSnr, opts.minSnrForm)} loss weights` : ''),
  });
  console.log(`wrote ${o.out}/: ${manifest.files.map((f) => `${f.path} (${(f.bytes / 1024).toFixed(0)} KiB)`).join(', ')}`);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.exportOnly) {
    const c = loadCheckpoint(o.exportOnly);
    exportModel(o, c.ema, c, { ...o, ...c.options, unet: c.options.unet ?? PRE_CHANNELS_FLAG_UNET, minSnr: c.options.minSnr ?? 0, minSnrForm: c.options.minSnrForm ?? 'snr-plus-one', out: o.out });
    return;
  }
  const resumed = o.resume ? loadCheckpoint(o.resume) : undefined;
  // A checkpoint's shapes decide the architecture.
  if (resumed) o.unet = resumed.options.unet ?? PRE_CHANNELS_FLAG_UNET;
  const graph = buildTrainingGraph(resumed?.weights ?? new Map(), o.unet);
  const zeros = () => new Map([...graph.weights].map(([k, w]) => [k, new Float32Array(w.length)]));
  const s: TrainState = resumed
    ? { ...resumed, weights: graph.weights }
    : { segments: [], step: 0, weights: graph.weights, m: zeros(), v: zeros(), ema: new Map([...graph.weights].map(([k, w]) => [k, w.slice()])), seconds: 0, losses: [] };
  const params = [...s.weights.values()].reduce((n, w) => n + w.length, 0);
  console.log(`train-base: ${params} parameters in ${s.weights.size} tensors (UNet levels ${o.unet.blockOutChannels.join('/')}, `
    + `attention ${o.unet.crossAttention.map(Number).join('/')}); batch ${o.batch}, ${o.steps} steps, ${o.minSnr > 0 ? minSnrDescription(o.minSnr, o.minSnrForm) : 'no Min-SNR'}, from step ${s.step}${o.resume ? ` (resumed ${o.resume})` : ''}`);

  const session = await ort.InferenceSession.create(graph.bytes, { intraOpNumThreads: o.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3 });
  mkdirSync(o.ckptDir, { recursive: true });
  const ckpt = join(o.ckptDir, 'checkpoint.safetensors');
  let stop = false;
  process.on('SIGINT', () => ((stop = true), console.log('SIGINT: saving a checkpoint after this step')));
  s.segments.push({ from: s.step, to: s.step, scheduleSteps: o.steps });
  const segment = s.segments[s.segments.length - 1];
  const L = TINY_TEXT_ENCODER.contextLength, S = o.unet.sampleSize;
  const started = performance.now(), startStep = s.step, startSeconds = s.seconds;
  let window: number[] = [];
  const moments = new Map([...s.weights.keys()].map((name) => [name, { m: s.m.get(name)!, v: s.v.get(name)! }]));
  const optimizer = createAdamW(s.weights, { lr: o.lr, weightDecay: o.weightDecay, maxGradNorm: o.clip }, { steps: s.step, moments });

  while (s.step < Math.min(o.steps, o.stopAt) && !stop) {
    const b = makeBatch(o.seed, s.step, o.batch, L, o.cfgDropout, o.minSnr, o.minSnrForm);
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', b.inputIds, [o.batch, L]),
      sample: new ort.Tensor('float32', b.sample, [o.batch, 3, S, S]),
      timestep: new ort.Tensor('float32', b.timestep, [o.batch]),
      target: new ort.Tensor('float32', b.target, [o.batch, 3, S, S]),
      loss_weight: new ort.Tensor('float32', b.lossWeight, [o.batch]),
    };
    for (const [name, w] of s.weights) feeds[name] = new ort.Tensor('float32', w, graph.weightDims.get(name)!);
    const out = await session.run(feeds);
    const loss = (out.loss.data as Float32Array)[0];
    const grads = new Map([...s.weights.keys()].map((name) => [name, out[`${name}_grad`].data as Float32Array]));
    const lr = learningRate(o, s.step);
    const norm = optimizer.step(grads, lr).gradNorm; // a non-finite gradient skips the update, as torch's GradScaler would
    s.step++;
    segment.to = s.step;
    emaUpdate(s, o);
    window.push(loss);
    const elapsed = (performance.now() - started) / 1000;
    s.seconds = startSeconds + elapsed;
    if (s.step % o.logEvery === 0 || s.step === o.steps) {
      const mean = window.reduce((a, c) => a + c, 0) / window.length;
      s.losses.push(Number(mean.toFixed(5)));
      window = [];
      const rate = (s.step - startStep) / elapsed;
      const eta = (o.steps - s.step) / rate;
      console.log(`step ${s.step}/${o.steps}  loss ${mean.toFixed(4)}  |g| ${norm.toFixed(3)}  lr ${lr.toExponential(2)}  ${rate.toFixed(2)} steps/s  elapsed ${(s.seconds / 60).toFixed(1)} min  ETA ${(eta / 60).toFixed(1)} min`);
    }
    if (s.step % o.ckptEvery === 0) saveCheckpoint(ckpt, s, graph.weightDims, o);
    if (elapsed / 60 > o.maxMinutes) {
      console.log(`train-base: --max-minutes ${o.maxMinutes} reached at step ${s.step}`);
      break;
    }
  }
  saveCheckpoint(ckpt, s, graph.weightDims, o);
  console.log(`checkpoint: ${ckpt} (step ${s.step}, ${(s.seconds / 60).toFixed(1)} min of training)`);
  await session.release();
  if (o.export && !stop) exportModel(o, s.ema, s, o);
  else console.log(`not exported; to write ${o.out}/: npm run train:base -- --export-only ${ckpt}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
