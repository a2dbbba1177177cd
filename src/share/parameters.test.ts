// A1111 `parameters` text: what we write parses back to the same settings, and A1111's own infotext (as its
// create_infotext writes it) parses to the settings it states.
import { describe, expect, it } from 'vitest';
import { formatParameters, parseFields, parseParameters, schedulerFromSampler, ParametersError } from './parameters.ts';
import { SCHEDULER_NAMES } from '../diffusion/schedulers/index.ts';
import type { GenerateParams } from '../worker/protocol.ts';

const params: GenerateParams = { prompt: 'a small red circle above a large blue square', negativePrompt: 'blurry, dark', seed: 1234567, steps: 20, omega: 4.25, alpha: 0.35, beta: 1, scheduler: 'dpm++2m-karras' };

describe('formatParameters', () => {
  it("writes A1111's layout with CFG scale = ω + 1", () => {
    expect(formatParameters({ params, width: 32, height: 32, model: 'embedded-world', delta: 'model' })).toBe(
      'a small red circle above a large blue square\nNegative prompt: blurry, dark\n'
      + 'Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 5.25, Seed: 1234567, Size: 32x32, Model: embedded-world, NPO alpha: 0.35, NPO beta: 1, NPO delta: model');
  });

  it('states the η switch as "NPO eta: on/off" (only when given) and reads it back', () => {
    for (const eta of [true, false]) {
      const text = formatParameters({ params, width: 32, height: 32, model: 'embedded-world', eta, delta: 'model' });
      expect(text.split('\n').at(-1)).toContain(`NPO beta: 1, NPO eta: ${eta ? 'on' : 'off'}, NPO delta: model`);
      expect(parseParameters(text).eta).toBe(eta);
    }
    expect(parseParameters(formatParameters({ params, width: 32, height: 32 })).eta).toBeUndefined();
  });

  it('round-trips every scheduler and awkward prompts', () => {
    for (const scheduler of SCHEDULER_NAMES) {
      for (const [prompt, negativePrompt] of [['multi\nline prompt, with: colons', ''], ['', 'only negative'], ['Négative 猫', 'x']]) {
        const p = { ...params, prompt, negativePrompt, scheduler, omega: 0.1, alpha: 0.05 };
        const back = parseParameters(formatParameters({ params: p, width: 512, height: 768, model: 'a, model: "quoted"', delta: 'the trained LoRA' }));
        expect(back.params).toEqual(p);
        expect(back.size).toEqual({ width: 512, height: 768 });
        expect(back.model).toBe('a, model: "quoted"');
        expect(back.delta).toBe('the trained LoRA');
      }
    }
  });
});

describe('parseParameters on A1111 infotext', () => {
  it('reads a v1.10 infotext with a separate Schedule type', () => {
    const text = 'a photo of a cat, masterpiece\nNegative prompt: ugly, blurry\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.0';
    const parsed = parseParameters(text);
    expect(parsed.params).toEqual({ prompt: 'a photo of a cat, masterpiece', negativePrompt: 'ugly, blurry', steps: 20, scheduler: 'dpm++2m-karras', omega: 6, seed: 1234 });
    expect(parsed.model).toBe('v1-5-pruned-emaonly');
  });

  it('maps A1111 sampler names', () => {
    expect(schedulerFromSampler('Euler a')).toBe('euler-ancestral');
    expect(schedulerFromSampler('PLMS')).toBe('pndm');
    expect(schedulerFromSampler('DPM++ 2M Karras')).toBe('dpm++2m-karras');
    expect(schedulerFromSampler('DPM++ 2M SDE', 'Karras')).toBe('dpm++2m-sde-karras');
    expect(schedulerFromSampler('Restart')).toBeUndefined();
  });

  it('keeps an unknown sampler out of the settings and says so', () => {
    const parsed = parseParameters('cat\nSteps: 20, Sampler: Restart, CFG scale: 7, Seed: 1');
    expect(parsed.params.scheduler).toBeUndefined();
    expect(parsed.ignored).toEqual(['Sampler: Restart']);
  });

  it('keeps an η switch it cannot read out of the settings and says so', () => {
    const parsed = parseParameters('cat\nSteps: 20, Sampler: DDIM, CFG scale: 7, Seed: 1, NPO eta: maybe');
    expect(parsed.eta).toBeUndefined();
    expect(parsed.ignored).toEqual(['NPO eta: maybe']);
  });

  it('unquotes JSON-quoted values', () => {
    expect(parseFields('Steps: 2, Model: "a, b: c", Seed: 3')).toEqual(new Map([['Steps', '2'], ['Model', 'a, b: c'], ['Seed', '3']]));
  });

  it('refuses text that is not generation data, and bad numbers', () => {
    expect(() => parseParameters('just a comment')).toThrow(ParametersError);
    expect(() => parseParameters('cat\nSteps: 0, Sampler: DDIM, CFG scale: 7')).toThrow(/Steps/);
    expect(() => parseParameters('cat\nSteps: 20, Sampler: DDIM, CFG scale: x, Seed: 1')).toThrow(/CFG scale/);
  });
});
