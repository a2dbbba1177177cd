// Finite-difference gradient checking for the autodiff tests (test support, not shipped code paths).
// A case builds a tiny forward graph y = f(inputs) with the builder; the harness adds the scalar loss
// L = Σ y ⊙ w with fixed, distinct weights w (made in-graph from Range/Sin, so every element of y matters and the
// weights' own ops exercise the non-differentiable path), asks buildGradientModel for dL/d(input), runs it in
// onnxruntime-node, and compares with central differences (L(x + h) − L(x − h)) / 2h of the forward graph.
import * as ort from 'onnxruntime-node';
import { createGraphBuilder, type Dim, type GraphBuilder } from '../builder.ts';
import { writeModel } from '../model-io.ts';
import { DataType } from '../proto.ts';
import { buildGradientModel } from './index.ts';

export type FloatKind = 'float32' | 'float64';
export interface InputSpec {
  dims: number[];
  /** Declared shape (default dims); use a string for a symbolic dim. */
  shape?: Dim[];
  /** Differentiate with respect to this input (default true). */
  wrt?: boolean;
  /** Value generator (default uniform in [−1, 1)). */
  values?: (rand: () => number, index: number) => number;
}
export interface CaseSpec {
  inputs: Record<string, InputSpec>;
  build: (g: GraphBuilder, ins: Record<string, string>, k: Kind) => string;
  /** Float type of the analytic gradient graph (default float64). */
  dtype?: FloatKind;
  /** Float type of the finite-difference graph (default float64). */
  fdDtype?: FloatKind;
  step?: number;
  /** At most this many elements per input are perturbed (chosen at random). */
  maxChecks?: number;
  seed?: number;
  opset?: number;
}
export interface CheckResult {
  /** max |analytic − fd| / max |fd| over all checked elements. */
  relError: number;
  maxAbsGrad: number;
  checked: number;
}

/** Helpers a case uses to make constants in the graph's float type. */
export interface Kind {
  dt: number;
  array: (values: number[]) => Float32Array | Float64Array;
  scalar: (value: number) => string;
  tensor: (dims: number[], rand: () => number) => string;
  rand: () => number;
}

export function seeded(seed: number) {
  let s = seed >>> 0 || 1;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

function kindOf(g: GraphBuilder, kind: FloatKind, rand: () => number): Kind {
  const array = (values: number[]) => (kind === 'float64' ? Float64Array.from(values) : Float32Array.from(values));
  return {
    dt: kind === 'float64' ? DataType.DOUBLE : DataType.FLOAT,
    array,
    scalar: (value) => g.constant(array([value]), []),
    tensor: (dims, r) => g.constant(array(Array.from({ length: dims.reduce((a, b) => a * b, 1) }, r)), dims),
    rand,
  };
}

/** The forward graph plus the loss; constants come from a seeded generator so both float types get equal values. */
export function buildCase(spec: CaseSpec, kind: FloatKind): Uint8Array {
  const g = createGraphBuilder('case', spec.opset);
  const k = kindOf(g, kind, seeded((spec.seed ?? 1) + 1000));
  const ins: Record<string, string> = {};
  for (const [name, s] of Object.entries(spec.inputs)) ins[name] = g.input(name, k.dt, s.shape ?? s.dims);
  const y = spec.build(g, ins, k);
  const size = g.op('Cast', [g.op('Size', [y])], { to: k.dt });
  const ramp = g.op('Range', [k.scalar(0), size, k.scalar(1)]);
  const w = g.op('Reshape', [g.op('Sin', [g.op('Add', [g.op('Mul', [ramp, k.scalar(1.7)]), k.scalar(0.3)])]), g.op('Shape', [y])]);
  g.node('ReduceSum', [g.op('Mul', [y, w])], { keepdims: 0 }, { outputs: ['loss'] });
  g.output('loss', k.dt, []);
  return writeModel(g.build());
}

export function makeFeeds(spec: CaseSpec, seed: number, dims?: Record<string, number[]>): Record<string, Float64Array> {
  const rand = seeded(seed);
  const feeds: Record<string, Float64Array> = {};
  for (const [name, s] of Object.entries(spec.inputs)) {
    const d = dims?.[name] ?? s.dims;
    const n = d.reduce((a, b) => a * b, 1);
    feeds[name] = Float64Array.from({ length: n }, (_, i) => (s.values ? s.values(rand, i) : rand()));
  }
  return feeds;
}

function toTensors(spec: CaseSpec, values: Record<string, Float64Array>, kind: FloatKind, dims?: Record<string, number[]>) {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, v] of Object.entries(values)) {
    const data = kind === 'float64' ? v : Float32Array.from(v);
    out[name] = new ort.Tensor(kind, data, dims?.[name] ?? spec.inputs[name].dims);
  }
  return out;
}

// ORT's fusions (e.g. x·Sigmoid(x) → com.microsoft.QuickGelu) exist for float32 only and then fail to find a
// float64 kernel, so float64 sessions run with basic optimisations; float32 sessions keep ORT's defaults.
const sessionOptions = (kind: FloatKind): ort.InferenceSession.SessionOptions =>
  kind === 'float64' ? { graphOptimizationLevel: 'basic' } : {};

/** Runs the gradient model once; returns loss and every `<wrt>_grad`. */
export async function analyticGradients(spec: CaseSpec, values: Record<string, Float64Array>, dims?: Record<string, number[]>) {
  const kind = spec.dtype ?? 'float64';
  const wrt = Object.keys(spec.inputs).filter((n) => spec.inputs[n].wrt !== false);
  const model = buildGradientModel(buildCase(spec, kind), { loss: 'loss', wrt });
  const session = await ort.InferenceSession.create(model, sessionOptions(kind));
  try {
    const out = await session.run(toTensors(spec, values, kind, dims));
    const grads: Record<string, { dims: readonly number[]; data: Float64Array }> = {};
    for (const w of wrt) grads[w] = { dims: out[`${w}_grad`].dims, data: Float64Array.from(out[`${w}_grad`].data as Float32Array) };
    return { loss: Number(out.loss.data[0]), grads };
  } finally {
    await session.release();
  }
}

/** Central differences at up to maxChecks random elements of each wrt input. */
export async function finiteDifferences(spec: CaseSpec, values: Record<string, Float64Array>, dims?: Record<string, number[]>) {
  const kind = spec.fdDtype ?? 'float64';
  const h = spec.step ?? (kind === 'float64' ? 1e-6 : 1e-2);
  const pick = seeded((spec.seed ?? 1) + 7);
  const session = await ort.InferenceSession.create(buildCase(spec, kind), sessionOptions(kind));
  const loss = async (v: Record<string, Float64Array>) => Number((await session.run(toTensors(spec, v, kind, dims))).loss.data[0]);
  const result: Record<string, Map<number, number>> = {};
  try {
    for (const name of Object.keys(spec.inputs).filter((n) => spec.inputs[n].wrt !== false)) {
      const n = values[name].length;
      const max = spec.maxChecks ?? 24;
      const indices = n <= max ? [...Array(n).keys()] : [...new Set(Array.from({ length: max }, () => Math.floor(((pick() + 1) / 2) * n)))];
      result[name] = new Map();
      for (const i of indices) {
        const v = { ...values, [name]: Float64Array.from(values[name]) };
        v[name][i] = values[name][i] + h;
        const plus = await loss(v);
        v[name][i] = values[name][i] - h;
        const minus = await loss(v);
        result[name].set(i, (plus - minus) / (2 * h));
      }
    }
  } finally {
    await session.release();
  }
  return result;
}

/** The whole check at the inputs' declared dims (or `dims` overriding them, for symbolic shapes). */
export async function gradCheck(spec: CaseSpec, dims?: Record<string, number[]>): Promise<CheckResult> {
  const values = makeFeeds(spec, spec.seed ?? 1, dims);
  const { grads } = await analyticGradients(spec, values, dims);
  const fd = await finiteDifferences(spec, values, dims);
  let maxDiff = 0;
  let maxFd = 0;
  let maxAbsGrad = 0;
  let checked = 0;
  for (const [name, map] of Object.entries(fd)) {
    const grad = grads[name];
    const expectedDims = dims?.[name] ?? spec.inputs[name].dims;
    if (grad.dims.join() !== expectedDims.join()) throw new Error(`${name}_grad has shape [${grad.dims}], expected [${expectedDims}]`);
    for (const [i, value] of map) {
      maxDiff = Math.max(maxDiff, Math.abs(grad.data[i] - value));
      maxFd = Math.max(maxFd, Math.abs(value));
      checked++;
    }
    for (const v of grad.data) maxAbsGrad = Math.max(maxAbsGrad, Math.abs(v));
  }
  return { relError: maxDiff / Math.max(maxFd, 1e-12), maxAbsGrad, checked };
}
