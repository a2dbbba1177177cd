// The small pure helpers of the page: URL settings, pixels ↔ model values, the difference image, the reward on page
// pixels, sweep axes and best cell, chart geometry and pace, history eviction, and picks → pairs.json.
import { describe, expect, it } from 'vitest';
import { etaFromQuery, paramsFromQuery, queryWithParams } from './settings-url.ts';
import { differenceRgba, rgbaToChw } from './image.ts';
import { scoreRgba } from './score.ts';
import { bestIndex, parseAxisValues, sweepCells, SweepError } from './sweep.ts';
import { chartGeometry, pace } from './chart.ts';
import { evictions } from './history.ts';
import { addPick, picksToPairs, type Pick } from './picks.ts';
import { parsePairs } from '../train/pairs.ts';
import { chwToRgba } from '../diffusion/image.ts';
import { scoreImage } from '../reward/index.ts';
import { renderScene, layoutScene, parseCaption } from '../world/index.ts';
import type { GenerateParams } from '../worker/protocol.ts';

const params: GenerateParams = { prompt: 'a red & blue "thing"?', negativePrompt: 'x=y', seed: 7, steps: 3, omega: 2.5, alpha: 0.25, beta: 1, scheduler: 'euler' };

it('settings survive the URL and other keys are kept', () => {
  const search = queryWithParams('?backend=wasm&model=%2Fm%2F&seed=1', params);
  const query = new URLSearchParams(search);
  expect(query.get('backend')).toBe('wasm');
  expect(query.get('model')).toBe('/m/');
  expect(paramsFromQuery(query)).toEqual(params);
  expect(etaFromQuery(query)).toBeUndefined(); // not written: no η switch
});

it('the η switch survives the URL; a model without η drops the key, and other words are not read as a state', () => {
  for (const eta of [true, false]) expect(etaFromQuery(new URLSearchParams(queryWithParams('?seed=1', params, eta)))).toBe(eta);
  expect(new URLSearchParams(queryWithParams('?eta=off', params)).has('eta')).toBe(false);
  for (const word of ['1', 'true', 'OFF', '']) expect(etaFromQuery(new URLSearchParams({ eta: word }))).toBeUndefined();
});

it('rgbaToChw inverts chwToRgba on byte values, and the difference image is |a − b|·gain clipped', () => {
  const rgba = Uint8ClampedArray.from({ length: 4 * 6 }, (_, i) => (i % 4 === 3 ? 255 : (i * 37) % 256));
  expect(chwToRgba(rgbaToChw(rgba, 3, 2), 3, 2, 3)).toEqual(rgba);
  const a = Uint8ClampedArray.from([10, 200, 0, 255]), b = Uint8ClampedArray.from([14, 100, 0, 255]);
  expect(Array.from(differenceRgba(a, b, 8))).toEqual([32, 255, 0, 255]);
});

describe('scoreRgba', () => {
  const caption = 'a small red circle above a large blue square';
  const chw = renderScene(layoutScene(parseCaption(caption)), 32);
  it('matches the reward on the float image within 8-bit rounding', () => {
    const page = scoreRgba(chwToRgba(chw, 3, 32, 32), 32, 32, caption);
    const ref = scoreImage(chw, caption);
    expect(page.ok).toBe(true);
    if (page.ok) for (const k of ['total', 'fidelity', 'detail', 'colour', 'composition'] as const) expect(Math.abs(page.scores[k] - ref[k])).toBeLessThan(0.02);
  });
  it('gives a reason for free text and for other image sizes', () => {
    const r = scoreRgba(chwToRgba(chw, 3, 32, 32), 32, 32, 'a photo of a cat');
    expect(r.ok).toBe(false);
    expect(scoreRgba(new Uint8ClampedArray(64 * 64 * 4), 64, 64, caption)).toMatchObject({ ok: false, reason: expect.stringMatching(/32×32/) });
  });
});

describe('sweep', () => {
  it('parses axis values and refuses bad ones by name', () => {
    expect(parseAxisValues('0, 0.5 1', 'alpha')).toEqual([0, 0.5, 1]);
    expect(() => parseAxisValues('0, 2.5', 'beta')).toThrow(/2.5 is outside \[0, 2\]/);
    expect(() => parseAxisValues('a', 'omega')).toThrow(SweepError);
    expect(() => parseAxisValues('', 'alpha')).toThrow(/at least one/);
    expect(() => parseAxisValues('0 0', 'alpha')).toThrow(/repeat/);
  });
  it('lays cells out row by row and finds the best', () => {
    const cells = sweepCells('alpha', [0, 1], 'beta', [0, 0.5, 1]);
    expect(cells.map((c) => [c.values.alpha, c.values.beta])).toEqual([[0, 0], [0, 0.5], [0, 1], [1, 0], [1, 0.5], [1, 1]]);
    expect(() => sweepCells('alpha', [0], 'alpha', [1])).toThrow(/differ/);
    expect(bestIndex([0.2, undefined, 0.7, 0.7, 0.1])).toBe(2);
    expect(bestIndex([undefined])).toBe(-1);
  });
});

it('chart geometry: first step at the left, accuracy 1 at the top, ln 2 inside the loss range; pace from the rate', () => {
  const g = chartGeometry([{ step: 1, loss: 0.7, accuracy: 0 }, { step: 3, loss: 0.6, accuracy: 1 }], 3, 108, 58, 4);
  expect(g.points[0]).toEqual({ x: 4, lossY: 4, accuracyY: 54 });
  expect(g.points[1]).toEqual({ x: 104, lossY: 54, accuracyY: 4 });
  expect(g.lossRange[0]).toBe(0.6);
  expect(g.loss).toBe('4.0,4.0 104.0,54.0');
  expect(pace(2, 3, 10)).toEqual({ secondsPerStep: 0.5, etaSeconds: 3.5 });
  expect(pace(0, 1, 2)).toBeUndefined();
});

it('history keeps the newest unstarred entries and every starred one', () => {
  const entries = [1, 2, 3, 4, 5].map((id) => ({ id, time: id * 10, starred: id === 1 }));
  expect(evictions(entries, 2).sort()).toEqual([2, 3]);
  expect(evictions(entries, 10)).toEqual([]);
});

describe('picks', () => {
  const image = (v: number) => Uint8ClampedArray.from({ length: 2 * 2 * 4 }, (_, i) => (i % 4 === 3 ? 255 : v + i));
  const pick = (key: string, w: number): Pick => ({ prompt: 'a red square', winner: image(w), loser: image(100), width: 2, height: 2, key });
  it('become a pairs.json that src/train/pairs.ts accepts, winners first, exact bytes', () => {
    const picks = addPick(addPick(addPick([], pick('s1', 10)), pick('s2', 20)), pick('s1', 30)); // s1 re-picked
    expect(picks.map((p) => p.key)).toEqual(['s2', 's1']);
    const decoded = parsePairs(JSON.stringify(picksToPairs(picks)), { width: 2, height: 2 });
    expect(decoded).toHaveLength(2);
    expect(decoded[1].winner).toEqual(rgbaToChw(image(30), 2, 2));
    expect(decoded[1].loser).toEqual(rgbaToChw(image(100), 2, 2));
  });
  it('refuses an empty set and mixed sizes', () => {
    expect(() => picksToPairs([])).toThrow(/no picks/);
    expect(() => picksToPairs([pick('a', 1), { ...pick('b', 1), width: 1, height: 4 }])).toThrow(/mix image sizes/);
  });
});
