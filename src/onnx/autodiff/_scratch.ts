import * as ort from 'onnxruntime-node';
import { buildGradientModel } from './index.ts';
import { buildCase, makeFeeds, type CaseSpec } from './gradcheck.ts';
const spec: CaseSpec = { inputs: { a: { dims: [3, 4] }, b: { dims: [4, 2] } }, build: (g, ins) => g.op('Sigmoid', [g.op('MatMul', [ins.a, ins.b])]), dtype: 'float32' };
const model = buildGradientModel(buildCase(spec, 'float32'), { loss: 'loss', wrt: ['a', 'b'] });
const values = makeFeeds(spec, 1);
const feeds = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, new ort.Tensor('float32', Float32Array.from(v), spec.inputs[k].dims)]));
for (const ep of ['cpu', 'webgpu']) {
  try {
    const s = await ort.InferenceSession.create(model, { executionProviders: [ep] });
    const out = await s.run(feeds);
    console.log(ep, Array.from(out.a_grad.data as Float32Array).slice(0, 4));
    await s.release();
  } catch (e) { console.log(ep, String(e).slice(0, 300)); }
}
