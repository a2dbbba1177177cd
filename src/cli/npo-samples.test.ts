// Decisive pairs: one per prompt, its best sample against its worst, only when the reward gap reaches the margin;
// training captions never include held-out ones; tuning captions include neither held-out nor pair prompts.
import { describe, expect, it } from 'vitest';
import { encodeImage } from '../train/pairs.ts';
import { isHeldOut } from '../world/index.ts';
import type { ModelManifest } from '../model/manifest.ts';
import { captionRange, decisivePairs, trainingCaptions, tuningCaptions, tuningCaptionsOf, type SamplesFile } from './npo-samples.ts';

const image = (v: number) => encodeImage(new Float32Array(3 * 4 * 4).fill(v), 4, 4, 'float32-chw');
const file: SamplesFile = {
  version: 1, model: 'm', sampler: 's',
  samples: [
    { prompt: 'p1', seeds: [1, 2, 3, 4], totals: [0.4, 0.7, 0.2, 0.5], images: [image(0.1), image(0.2), image(0.3), image(0.4)] },
    { prompt: 'p2', seeds: [1, 2, 3], totals: [0.50, 0.55, 0.52], images: [image(0.5), image(0.6), image(0.7)] },
  ],
};

describe('decisive pairs', () => {
  it('pairs the best sample with the worst and drops prompts under the margin', () => {
    const { pairs, gaps, dropped } = decisivePairs(file, 0.1);
    expect(pairs.map((p) => p.prompt)).toEqual(['p1']);
    expect(pairs[0].winner[0]).toBeCloseTo(0.2, 6); // totals 0.7 (sample 2) vs 0.2 (sample 3)
    expect(pairs[0].loser[0]).toBeCloseTo(0.3, 6);
    expect(gaps[0]).toBeCloseTo(0.5, 12);
    expect(dropped).toBe(1);
    expect(decisivePairs(file, 0.05).pairs.map((p) => p.prompt)).toEqual(['p1', 'p2']);
    expect(decisivePairs(file, 0.05, new Set(['p2'])).pairs.map((p) => p.prompt)).toEqual(['p2']);
  });

  it('draws distinct training-split captions, the same for a seed', () => {
    const captions = trainingCaptions(50, 0);
    expect(new Set(captions).size).toBe(50);
    expect(captions.some(isHeldOut)).toBe(false);
    expect(trainingCaptions(20, 0)).toEqual(captions.slice(0, 20));
  });

  it('tuning captions are training-split captions the pair prompts do not include', () => {
    const pairPrompts = new Set(trainingCaptions(30, 0));
    const tuning = tuningCaptions(20, 30);
    expect(new Set(tuning).size).toBe(20);
    expect(tuning.some((c) => pairPrompts.has(c))).toBe(false);
    expect(tuning.some(isHeldOut)).toBe(false);
  });

  it('a caption range continues the one stream: η\'s pairs, then tuning, then a δ of its own', () => {
    const stream = trainingCaptions(60, 0);
    expect(captionRange(40, 20)).toEqual(stream.slice(40));
    expect(tuningCaptions(10, 30)).toEqual(stream.slice(30, 40));
  });

  it('tuning prompts stop before the prompts of an η or δ trained on pairs of its own', () => {
    const manifest = (training: object) => ({ training }) as unknown as ModelManifest;
    expect(tuningCaptionsOf(manifest({ pairs: { prompts: 30 } }), 10)).toEqual(tuningCaptions(10, 30));
    const own = manifest({ pairs: { prompts: 30 }, delta: { firstPrompt: 50, prompts: 40 } });
    expect(tuningCaptionsOf(own, 20)).toEqual(tuningCaptions(20, 30));
    expect(() => tuningCaptionsOf(own, 21)).toThrow(/reach δ's pair prompts, which start at caption 50; ask for at most 20/);
    expect(() => tuningCaptionsOf(manifest({ pairs: { prompts: 30 }, eta: { firstPrompt: 35, prompts: 10 } }), 6)).toThrow(/reach η's pair prompts, which start at caption 35; ask for at most 5/);
    expect(() => tuningCaptionsOf(manifest({}), 5)).toThrow(/training\.pairs\.prompts/);
  });
});
