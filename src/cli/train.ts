// Trains a DPO LoRA (or an NPO one with --reverse) on a model directory and preference pairs, in Node on onnxruntime-node.
//   npm run train -- --model models --pairs <pairs.json | image folder | .zip | Pick-a-Pic .parquet> [--max-pairs N] [--reverse] [--rank 8] [--alpha R] [--steps 200] [--beta 2500]
//                    [--lr 1e-4] [--batch 8] [--seed 0] [--weight-decay 1e-2] [--max-grad-norm 1]
//                    [--checkpoint-every 50] [--resolution 512] [--format diffusers|peft|kohya|kohya-sgm] --out lora.safetensors
//                    [--checkpoint auto|off|blocks|layers] [--memory-gib N] [--weights fp32|fp16] [--hflip]
//                    [--grad-accum 1] [--lr-scheduler constant|constant_with_warmup|linear|cosine] [--lr-warmup 0]
//                    [--execution-mode sequential|parallel]
// --grad-accum N averages N micro-batches' gradients per update; --lr-scheduler / --lr-warmup are diffusers' schedules
// (src/train/lr-schedule.ts; the DPO script's own default is constant_with_warmup, 500).
// --hflip mirrors each drawn pair with probability ½ (diffusers' DPO scripts do unless --no_hflip; off here by default,
// since the embedded world's captions say left and right).
// --checkpoint recomputes the UNet's activations in the backward pass (activation checkpointing): 'auto' plans the
// step's memory (src/train/memory-plan.ts) for prepared models and recomputes, coarse to fine, when the plan exceeds
// --memory-gib (default: the memory available now, less a tenth); where even that does not fit, micro-batches with
// gradient accumulation (the same effective batch), and else it refuses with the plan's numbers. The choice and the
// planned totals are printed. An allocation that fails anyway ends the run with the last good LoRA at --out. On Linux
// the command runs again under a fixed malloc mmap threshold, so that freed values leave the process, and the model's
// UNet weights are let go once the training session holds its copy (training-process.ts).
// --weights fp16 stores the frozen UNet weights as float16 during training (half their memory; the LoRA, its
// gradients and AdamW's state stay float32, src/train/dpo-graph.ts); the memory plan counts them so.
// --execution-mode parallel starts the training session in seconds where onnxruntime's sequential executor plans its
// buffer reuse for minutes (SDXL: 12 s vs 86 s on 2 cores), at the cost of more memory (src/train/quick-start.ts).
// --model is the embedded model's directory or a prepared SD1.5 / SDXL one (`npm run prepare-model`); for a prepared
// model the pairs' images (at --resolution², default the manifest's size) go through its VAE encoder to latents, and
// --beta defaults to the released NPO δ's β_dpo: 500 for SD1.5, 2000 for SDXL (whose scripts scale it by 0.5,
// train-lora.ts). --format kohya-sgm names the modules as kohya's SDXL LoRAs do (input_blocks_4_1_…). An image folder or .zip (metadata.jsonl or .csv of prompt,
// chosen, rejected) or a Pick-a-Pic shard is resized and centre-cropped to the training size as diffusers' DPO script
// does (src/train/pair-sources.ts).
// One progress line per step. The LoRA is written in diffusers' key format (or --format peft / kohya) at --out, every
// --checkpoint-every steps and at the end; a NaN stops training with an error and leaves the last good LoRA at --out.
import { renameSync, writeFileSync } from 'node:fs';
import { freemem } from 'node:os';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { tokenize } from '../embedded/tokenizer.ts';
import { serializeLora } from '../lora/serialize.ts';
import type { LoraWriteFormat } from '../lora/serialize.ts';
import type { LoraSet } from '../lora/types.ts';
import { isPrepared, type AnyManifest } from '../model/manifest.ts';
import { planTrainingRun, type PlannedGraph } from '../train/memory-plan.ts';
import { CHECKPOINT_CHOICES, type CheckpointChoice, type CheckpointMode } from '../train/unet-segments.ts';
import { readModelDirectory } from '../pipelines/read-directory.ts';
import { readPairsSourceNode } from '../train/decode-node.ts';
import { decodePairs, parsePairs } from '../train/pairs.ts';
import { defaultBeta } from '../train/dpo-beta.ts';
import { WEIGHTS_PRECISIONS, type WeightsPrecision } from '../train/dpo-graph.ts';
import { checkLrSchedule, type LrSchedule } from '../train/lr-schedule.ts';
import { trainingResolution, trainLora, TrainingError } from '../train/train-lora.ts';
import { collectGarbage, rerunForTraining } from './training-process.ts';

const USAGE = 'usage: npm run train -- --model <dir> --pairs <pairs.json | folder | .zip | .parquet> [--max-pairs N] --out <lora.safetensors> [--reverse] [--rank 8] [--alpha R] '
  + '[--steps 200] [--beta 2500 (500 for SD1.5, 2000 for SDXL)] [--lr 1e-4] [--batch 8] [--seed 0] [--weight-decay 1e-2] [--max-grad-norm 1] [--checkpoint-every 50] [--resolution N (prepared models)] [--format diffusers|peft|kohya|kohya-sgm] [--checkpoint auto|off|blocks|layers] [--memory-gib N] [--weights fp32|fp16] [--hflip] [--grad-accum 1] [--lr-scheduler constant|constant_with_warmup|linear|cosine] [--lr-warmup 0] [--execution-mode sequential|parallel]';

function number(values: Record<string, unknown>, key: string, fallback: number, integer = false): number {
  const raw = values[key];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || (integer && !Number.isSafeInteger(value))) throw new Error(`--${key} must be ${integer ? 'an integer' : 'a number'}, got ${String(raw)}`);
  return value;
}

function writeLora(path: string, lora: LoraSet, format: LoraWriteFormat) {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, serializeLora(lora, format, { metadata: lora.metadata }));
  renameSync(tmp, path); // a crash mid-write never leaves a truncated LoRA at --out
}

/**
 * Memory a run may plan for when --memory-gib is not given: what the machine has available now (Linux's MemAvailable,
 * Node's freemem), less a tenth for the page cache and other processes. What this process already holds (the model's
 * files, ORT) is not in it: the plan counts what the training session adds.
 */
const AVAILABLE_SHARE = 0.9;

/**
 * The --checkpoint choice and the micro-batch made concrete: for a prepared model by the memory plan (printed)
 * against the memory available, refused with the plan's numbers when even checkpointing layers and single-pair
 * micro-batches do not fit; the trainer then runs the planned graph rather than build it again. Else as given
 * ('auto': off).
 */
function chooseCheckpoint(values: Record<string, unknown>, manifest: AnyManifest, files: ReadonlyMap<string, Uint8Array>, run: { width: number; height: number; batch: number; rank: number; weights: WeightsPrecision }): { checkpoint: CheckpointMode; graph?: PlannedGraph; batch: number; accumulation: number; arena: boolean } {
  const choice = values.checkpoint as CheckpointChoice;
  if (!CHECKPOINT_CHOICES.includes(choice)) throw new Error(`--checkpoint must be one of ${CHECKPOINT_CHOICES.join(', ')}, got ${String(choice)}`);
  if (!isPrepared(manifest)) return { checkpoint: choice === 'auto' ? 'off' : choice, batch: run.batch, accumulation: 1, arena: true };
  const memoryBytes = number(values, 'memory-gib', (freemem() * AVAILABLE_SHARE) / 2 ** 30) * 2 ** 30;
  const chosen = planTrainingRun(manifest, files.get(manifest.unet.file)!, run, { memoryBytes, budgetBytes: memoryBytes }, choice);
  if (chosen.problem) throw new Error(`${chosen.problem}${values['memory-gib'] === undefined ? ' (the memory available now, less a tenth; --memory-gib sets it)' : ''}`);
  console.log(chosen.summary);
  return { checkpoint: chosen.checkpoint, graph: chosen.built, batch: chosen.batch, accumulation: chosen.accumulation, arena: chosen.arena };
}

async function main() {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' }, pairs: { type: 'string' }, out: { type: 'string' }, reverse: { type: 'boolean', default: false }, hflip: { type: 'boolean', default: false }, 'grad-accum': { type: 'string' }, 'lr-scheduler': { type: 'string', default: 'constant' }, 'lr-warmup': { type: 'string' },
      rank: { type: 'string' }, alpha: { type: 'string' }, steps: { type: 'string' }, beta: { type: 'string' }, lr: { type: 'string' },
      batch: { type: 'string' }, seed: { type: 'string' }, 'weight-decay': { type: 'string' }, 'max-grad-norm': { type: 'string' },
      'checkpoint-every': { type: 'string' }, 'max-pairs': { type: 'string' }, resolution: { type: 'string' }, format: { type: 'string', default: 'diffusers' }, checkpoint: { type: 'string', default: 'auto' }, 'memory-gib': { type: 'string' }, weights: { type: 'string', default: 'fp32' }, 'execution-mode': { type: 'string', default: 'sequential' }, help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return void console.log(USAGE);
  if (!values.model || !values.pairs || !values.out) throw new Error(`--model, --pairs and --out are required\n${USAGE}`);
  const format = values.format as LoraWriteFormat;
  if (!['diffusers', 'peft', 'kohya', 'kohya-sgm'].includes(format)) throw new Error(`--format must be diffusers, peft, kohya or kohya-sgm, got ${values.format}`);
  const weights = values.weights as WeightsPrecision;
  if (!WEIGHTS_PRECISIONS.includes(weights)) throw new Error(`--weights must be one of ${WEIGHTS_PRECISIONS.join(', ')}, got ${values.weights}`);
  const executionMode = values['execution-mode'] as 'sequential' | 'parallel';
  if (!['sequential', 'parallel'].includes(executionMode)) throw new Error(`--execution-mode must be sequential or parallel, got ${executionMode}`);
  const { manifest, files } = readModelDirectory(values.model, { offsets: false }); // δ is trained from θ: η and δ stay unread
  const prepared = isPrepared(manifest);
  const rank = number(values, 'rank', 8, true);
  const options = {
    rank, alpha: number(values, 'alpha', rank), steps: number(values, 'steps', 200, true), beta: number(values, 'beta', defaultBeta(prepared ? manifest.kind : 'embedded')),
    lr: number(values, 'lr', 1e-4), batch: number(values, 'batch', 8, true), seed: number(values, 'seed', 0, true),
    weightDecay: number(values, 'weight-decay', 1e-2), maxGradNorm: number(values, 'max-grad-norm', 1),
    gradAccum: number(values, 'grad-accum', 1, true), lrSchedule: values['lr-scheduler'] as LrSchedule, lrWarmup: number(values, 'lr-warmup', 0, true),
  };
  checkLrSchedule(options.lrSchedule, options.lrWarmup); // before any model work
  const every = number(values, 'checkpoint-every', 50, true);
  let size: { width: number; height: number };
  let checkPrompt: ((p: string) => void) | undefined;
  if (prepared) {
    const side = values.resolution === undefined ? undefined : number(values, 'resolution', 0, true);
    size = trainingResolution(manifest, side === undefined ? undefined : { width: side, height: side });
  } else {
    if (values.resolution !== undefined) throw new Error('--resolution is for prepared SD models; the embedded model trains at its own size');
    const { sampleSize } = manifest.unet.config;
    size = { width: sampleSize, height: sampleSize };
    checkPrompt = (p) => void tokenize(p, manifest.textEncoder.config.contextLength);
  }
  if (size.width !== size.height && !values.pairs.toLowerCase().endsWith('.json')) throw new Error(`image pair sources train square images; the model's size is ${size.width}×${size.height}`);
  const maxPairs = values['max-pairs'] === undefined ? undefined : number(values, 'max-pairs', 0, true);
  const source = await readPairsSourceNode(values.pairs, size.width, maxPairs);
  if ('notes' in source) for (const note of source.notes) console.log(`${values.pairs}: ${note}`);
  const pairs = 'json' in source ? parsePairs(source.json, { ...size, checkPrompt }) : decodePairs(source.file, { ...size, checkPrompt });
  const objective = values.reverse ? 'NPO (reversed pairs)' : 'DPO';
  console.log(`${objective}: ${pairs.length} pairs from ${values.pairs}, model ${manifest.name}, rank ${rank}, ${options.steps} steps, batch ${options.batch}, β ${options.beta}, lr ${options.lr}, weights ${weights}`);

  const { checkpoint, graph, batch, accumulation, arena } = chooseCheckpoint(values, manifest, files, { ...size, batch: Math.min(options.batch, pairs.length), rank, weights });
  const out = values.out;
  try {
    const { lora, history } = await trainLora({
      ort, model: { manifest, files }, pairs, reverse: values.reverse, hflip: values.hflip, ...options, batch, gradAccum: (options.gradAccum ?? 1) * accumulation, ...(prepared ? { resolution: size } : {}),
      sessionOptions: { logSeverityLevel: 3, executionMode, ...(arena ? {} : { enableCpuMemArena: false }) }, checkpoint, graph, weights,
      onUnetWeightsCopied: (paths) => { // the session has them: no second copy for the whole run
        for (const path of paths) files.delete(path);
        collectGarbage();
      },
      onStep(r, trainer) {
        console.log(`step ${String(r.step).padStart(String(r.steps).length)}/${r.steps}  loss ${r.loss.toFixed(4)}  acc ${r.accuracy.toFixed(2)}  |g| ${r.gradNorm.toExponential(2)}  ${r.stepsPerSecond.toFixed(2)} steps/s`);
        if (r.step % every === 0 && r.step < r.steps) writeLora(out, trainer.lora({ objective, steps: String(r.step) }), format);
      },
    });
    writeLora(out, lora, format);
    const last = history.slice(-Math.min(10, history.length));
    const mean = (f: (r: (typeof last)[0]) => number) => last.reduce((s, r) => s + f(r), 0) / last.length;
    console.log(`wrote ${out} (${format} keys, ${lora.entries.size} modules); last ${last.length} steps: loss ${mean((r) => r.loss).toFixed(4)}, acc ${mean((r) => r.accuracy).toFixed(2)}`);
  } catch (error) {
    if (!(error instanceof TrainingError)) throw error;
    writeLora(out, error.lastGood, format);
    throw new Error(`${error.message}\nwrote the last good LoRA (after step ${error.lastGoodStep}) to ${out}`);
  }
}

const rerun = rerunForTraining(); // the same command under the malloc setting training is planned for, gc() exposed (training-process.ts)
if (rerun !== null) process.exit(rerun);
main().catch((error: unknown) => {
  console.error(`train: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
