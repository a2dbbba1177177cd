// Decisive preference pairs the Pick-a-Pic way (issue 12, item 3): sample the base model K times per training prompt,
// score every sample with the fixed reward (src/reward), and keep one pair per prompt, the best against the worst,
// when their totals differ by at least a margin. The samples and their scores are kept in a file (data/samples.json,
// resumable), so pairs can be cut at another margin, or split for a sweep, without sampling again.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { scoreImage } from '../reward/index.ts';
import { encodeImage, type EncodedImage, type PreferencePair } from '../train/pairs.ts';
import { createRng, fnv1a, sampleExample } from '../world/index.ts';
import { engineWith, type ModelDirectory } from '../eval/sample-model.ts';
import type { ModelManifest } from '../model/manifest.ts';

export interface PromptSamples { prompt: string; seeds: number[]; totals: number[]; images: EncodedImage[] }
export interface SamplesFile { version: 1; model: string; sampler: string; samples: PromptSamples[] }

/** `count` distinct training-split captions, the same for a given seed everywhere. */
export function trainingCaptions(count: number, seed: number): string[] {
  const rng = createRng(seed + 7);
  const captions = new Set<string>();
  while (captions.size < count) captions.add(sampleExample(rng, 'train').caption);
  return [...captions];
}

/** Captions `first` … `first + count − 1` of the training-caption stream every pair and tuning set is cut from
 *  (trainingCaptions with seed 0): η's pairs use the first ones, tuning prompts the next, and a δ trained on pairs η
 *  never saw (train:npo --first-prompt) a range further on. Fixed, so a training seed changes noise, not prompts. */
export function captionRange(first: number, count: number): string[] {
  return trainingCaptions(first + count, 0).slice(first);
}

/** `count` training-split captions that the pairs of a `pairPrompts`-prompt `trainingCaptions` run did not use: prompts for
 *  choosing inference settings (α, β, δ's strength) without touching held-out ones or the prompts η and δ trained on. */
export function tuningCaptions(count: number, pairPrompts: number): string[] {
  return captionRange(pairPrompts, count);
}

type OwnPairs = { firstPrompt?: number; prompts?: number };
type TrainingRecord = { pairs?: { prompts?: number }; eta?: OwnPairs; delta?: OwnPairs };

/** The first `count` tuning captions of a model directory whose manifest records its pairs' run (npm run train:npo).
 *  They follow the shared pairs' prompts and must end before the prompts of an η or δ trained on pairs of its own. */
export function tuningCaptionsOf(manifest: ModelManifest, count: number): string[] {
  const training = (manifest as { training?: TrainingRecord }).training;
  const paired = training?.pairs?.prompts;
  if (!paired) throw new Error('tuning prompts need manifest.training.pairs.prompts (written by npm run train:npo)');
  for (const role of ['eta', 'delta'] as const) {
    const first = training?.[role]?.firstPrompt ?? 0;
    if (first > 0 && paired + count > first) {
      throw new Error(`${count} tuning prompts (captions ${paired}…${paired + count - 1}) would reach ${role === 'eta' ? 'η' : 'δ'}'s pair prompts, which start at caption ${first}; ask for at most ${Math.max(0, first - paired)}`);
    }
  }
  return tuningCaptions(count, paired);
}

/** Samples `perPrompt` images for each caption (seeds fnv1a(`k:caption`), k = 1…K), resuming from `path` if present. */
export async function samplePrompts(model: ModelDirectory, captions: string[], perPrompt: number, steps: number, path: string): Promise<SamplesFile> {
  const sampler = `ddim ${steps} steps, ω ${model.manifest.defaults.omega}, ${perPrompt} seeds per prompt`;
  const model_ = model.manifest.files.filter((f) => f.path.startsWith('unet')).map((f) => f.sha256.slice(0, 12)).join('+');
  let file: SamplesFile = { version: 1, model: model_, sampler, samples: [] };
  if (existsSync(path)) {
    const old = JSON.parse(readFileSync(path, 'utf8')) as SamplesFile;
    if (old.model === model_ && old.sampler === sampler) file = old;
  }
  const done = new Set(file.samples.map((s) => s.prompt));
  if (captions.every((c) => done.has(c))) return file;
  const engine = await engineWith(model, {});
  const size = model.manifest.unet.config.sampleSize;
  const started = performance.now();
  let sampled = captions.filter((c) => done.has(c)).length; // of these captions (the file may hold other runs')
  try {
    for (const prompt of captions) {
      if (done.has(prompt)) continue;
      const entry: PromptSamples = { prompt, seeds: [], totals: [], images: [] };
      for (let k = 1; k <= perPrompt; k++) {
        const seed = fnv1a(`${k}:${prompt}`);
        const params = { ...model.manifest.defaults, prompt, negativePrompt: '', steps, scheduler: 'ddim', seed };
        const image = (await engine.generate(params, ['baseline'], {})).images.get('baseline')!;
        entry.seeds.push(seed);
        entry.totals.push(scoreImage(image, prompt).total);
        entry.images.push(encodeImage(image, size, size, 'float32-chw'));
      }
      file.samples.push(entry);
      if (++sampled % 20 === 0) {
        writeFileSync(path, JSON.stringify(file));
        console.log(`samples: ${sampled}/${captions.length} prompts (${Math.round((performance.now() - started) / 1000)} s)`);
      }
    }
  } finally {
    await engine.release();
  }
  writeFileSync(path, JSON.stringify(file));
  return file;
}

function decode(image: EncodedImage): Float32Array {
  const bytes = Buffer.from(image.data, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** One pair per prompt: its best sample against its worst, when the reward gap is at least `margin`. */
export function decisivePairs(file: SamplesFile, margin: number, prompts?: ReadonlySet<string>): { pairs: PreferencePair[]; gaps: number[]; dropped: number } {
  const pairs: PreferencePair[] = [], gaps: number[] = [];
  let dropped = 0;
  for (const s of file.samples) {
    if (prompts && !prompts.has(s.prompt)) continue;
    const best = s.totals.indexOf(Math.max(...s.totals)), worst = s.totals.indexOf(Math.min(...s.totals));
    const gap = s.totals[best] - s.totals[worst];
    if (gap < margin) { dropped++; continue; }
    pairs.push({ prompt: s.prompt, winner: decode(s.images[best]), loser: decode(s.images[worst]) });
    gaps.push(gap);
  }
  return { pairs, gaps, dropped };
}
