// The short fuzz pass of `npm test` (300 seeded inputs per parser, fixed seed) and the regression corpus: every input
// that once crashed or hung a parser (src/fuzz/corpus/) must now be accepted or refused with the parser's own error,
// within the time bound. Plus the resource rules the fuzzer cannot see by outcome alone: a file that claims 100 GB is
// refused before anything that size is allocated, in well under a millisecond of work.
import { describe, expect, it } from 'vitest';
import { LoraError } from '../lora/errors.ts';
import { readSafetensors } from '../lora/safetensors.ts';
import { readWeight } from '../onnx/model-io.ts';
import { DataType, OnnxError } from '../onnx/proto.ts';
import { fuzz, loadCorpus, runOne } from './fuzz.ts';
import { u64le } from './mutate.ts';
import { frame } from './safetensors-mutate.ts';
import { TARGETS, targetByName } from './targets.ts';

const SEED = 20261202;
const RUNS = 300;
/** Generous: the machine running the tests may be busy; the long run (npm run fuzz) uses 1000 ms. */
const BOUND_MS = 3000;

describe('short fuzz pass', () => {
  for (const target of TARGETS) {
    it(`${target.name}: ${RUNS} mutated inputs, each accepted or refused with ${target.errorType}`, async () => {
      const stats = await fuzz({ target: target.name, runs: RUNS, seed: SEED, boundMs: BOUND_MS });
      expect(stats.findings.map((f) => `input ${f.index}: ${f.kind}: ${f.detail}`)).toEqual([]);
      // The mutations reach both sides of the parser: some inputs survive, most are refused.
      expect(stats.ok).toBeGreaterThan(0);
      expect(stats.rejected).toBeGreaterThan(RUNS / 4);
    });
  }
});

describe('regression corpus', () => {
  const corpus = loadCorpus();
  it('holds the inputs earlier runs found', () => expect(corpus.length).toBeGreaterThan(0));
  for (const { path, entry, parts } of corpus) {
    it(`${entry.target} ${entry.kind} s${entry.seed} i${entry.index} (${entry.detail.slice(0, 80)})`, async () => {
      const outcome = await runOne(targetByName(entry.target), parts, BOUND_MS);
      expect(outcome.kind, `${path}: ${outcome.detail}`).toMatch(/^(ok|rejected)$/);
    });
  }
});

/** Runs `parse`, expecting `type`; returns the milliseconds it took. */
function refusedIn(parse: () => unknown, type: abstract new (...a: never[]) => Error, message: RegExp): number {
  const start = performance.now();
  let thrown: unknown;
  try {
    parse();
  } catch (error) {
    thrown = error;
  }
  const ms = performance.now() - start;
  expect(thrown).toBeInstanceOf(type);
  expect((thrown as Error).message).toMatch(message);
  return ms;
}

describe('claims larger than the file are refused before allocation', () => {
  it('safetensors: a header length of 100 GB', () => {
    const file = new Uint8Array(64);
    file.set(u64le(100e9));
    expect(refusedIn(() => readSafetensors(file), LoraError, /absurdly large/)).toBeLessThan(50);
  });

  it('safetensors: a tensor whose shape and offsets claim 100 GB', () => {
    const file = frame(JSON.stringify({ w: { dtype: 'F32', shape: [25_000_000_000], data_offsets: [0, 100e9] } }), new Uint8Array(16));
    expect(refusedIn(() => readSafetensors(file), LoraError, /run past the end/)).toBeLessThan(50);
  });

  it('safetensors: a shape whose product overflows 2^53', () => {
    const file = frame(JSON.stringify({ w: { dtype: 'F32', shape: [2 ** 31, 2 ** 31, 2 ** 31], data_offsets: [0, 0] } }), new Uint8Array(0));
    expect(refusedIn(() => readSafetensors(file), LoraError, /too many elements/)).toBeLessThan(50);
  });

  it('ONNX: external data claiming 100 GB of a 16-byte file', () => {
    const tensor = {
      name: 'w', dims: [25_000_000_000], dataType: DataType.FLOAT, dataLocation: 1,
      externalData: [{ key: 'location', value: 'w.bin' }, { key: 'offset', value: '0' }, { key: 'length', value: '100000000000' }],
    };
    const files = new Map([['w.bin', new Uint8Array(16)]]);
    expect(refusedIn(() => readWeight(tensor, files), OnnxError, /past the end/)).toBeLessThan(50);
  });
});
