// The execution-memory model against onnxruntime itself and against hand-counted graphs: the order is compared with
// the node sequence of onnxruntime-node's own profile of the tiny SD1.5 UNet (fixtures/sd15, a real diffusers
// export); the lifetimes with small graphs whose peak is counted by hand.
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { ortExecutionOrder, simulatePeakMemory } from './execution-memory.ts';
import { readModel } from './model-io.ts';
import type { NodeProto } from './proto.ts';

const UNET = join(import.meta.dirname, '../../fixtures/sd15/export-diffusers/unet/model.onnx');

describe('onnxruntime execution order', () => {
  it("is the sequence of kernels in onnxruntime's own profile of a real UNet export", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ort-profile-'));
    const session = await ort.InferenceSession.create(UNET, { graphOptimizationLevel: 'disabled', enableProfiling: true, profileFilePrefix: join(dir, 'run'), logSeverityLevel: 3 });
    const zeros = (dims: number[]) => new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
    await session.run({ sample: zeros([1, 4, 8, 8]), timestep: zeros([1]), encoder_hidden_states: zeros([1, 77, 32]) });
    await session.release(); // writes the profile
    const events = JSON.parse(readFileSync(join(dir, readdirSync(dir)[0]), 'utf8')) as { cat?: string; name: string }[];
    const ran = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time')).map((e) => e.name.slice(0, -'_kernel_time'.length));

    const predicted = ortExecutionOrder(readModel(readFileSync(UNET)).graph!.node!).map((n) => n.name!);
    // ORT also drops some no-op Casts while loading (64 of the 1429 nodes here): compare the order of the rest.
    const ranSet = new Set(ran);
    expect(ran.length).toBeGreaterThan(0.9 * predicted.length);
    expect(predicted.filter((name) => ranSet.has(name))).toEqual(ran);
  });
});

const node = (opType: string, input: string[], output: string[]): NodeProto => ({ opType, input, output, name: output[0] });

describe('peak memory simulation', () => {
  const sizes: Record<string, number> = { x: 0, a: 100, b: 10, c: 1000, d: 1, r: 0, e: 50 };
  const bytesOf = (v: string) => (v === 'x' ? null : sizes[v] ?? null);

  it('frees a value after its last reader and keeps graph outputs to the end', () => {
    // x → a → b → c, and d reads a and c: a lives until d, so the peak is a + b + c (b is freed after c is made).
    const order = [node('Relu', ['x'], ['a']), node('Relu', ['a'], ['b']), node('Relu', ['b'], ['c']), node('Add', ['a', 'c'], ['d'])];
    expect(simulatePeakMemory(order, ['d'], bytesOf)).toEqual({ peakBytes: 100 + 10 + 1000, largestBytes: 1000 });
    // without the read of a: a is freed after b is made, c's step holds b + c
    const chain = [node('Relu', ['x'], ['a']), node('Relu', ['a'], ['b']), node('Relu', ['b'], ['c'])];
    expect(simulatePeakMemory(chain, ['c'], bytesOf).peakBytes).toBe(10 + 1000);
  });

  it('counts a Reshape as a view that keeps its source alive, and frees unread outputs at once', () => {
    const order = [node('Relu', ['x'], ['a']), node('Reshape', ['a', 'x'], ['r']), node('Relu', ['x'], ['e']), node('Add', ['r', 'e'], ['d'])];
    // a (viewed by r) lives until d reads r: peak = a + e + d
    expect(simulatePeakMemory(order, ['d'], bytesOf).peakBytes).toBe(100 + 50 + 1);
    const unread = [node('Relu', ['x'], ['c']), node('Relu', ['x'], ['a'])];
    expect(simulatePeakMemory(unread, ['a'], bytesOf).peakBytes).toBe(1000);
  });
});
