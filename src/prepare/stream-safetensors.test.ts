// The streaming safetensors reader/writer against the in-memory one (src/lora/safetensors.ts): same values, same
// refusals (they share the header validation), sharded diffusers folders, and a planned header that the in-memory
// reader accepts once the tensors are appended.
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors } from '../lora/safetensors.ts';
import { nodeFolder, nodeOutput } from './node-io.ts';
import { openAppender } from './shard-writer.ts';
import { openSafetensors, openSafetensorsFolder, planSafetensors } from './stream-safetensors.ts';

const scratch = () => mkdtempSync(join(tmpdir(), 'stream-st-'));
const values = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k) * 3);

describe('stream-safetensors', () => {
  it('reads each tensor as the in-memory reader does (F32, F16)', async () => {
    const dir = scratch();
    const bytes = writeSafetensors({ a: { shape: [3, 5], data: values(15, 1) }, b: { shape: [7], data: values(7, 2), dtype: 'F16' } }, { note: 'x' });
    writeFileSync(join(dir, 'm.safetensors'), bytes);
    const ref = readSafetensors(bytes);
    const st = await openSafetensors(nodeFolder(dir), 'm.safetensors');
    expect(st.metadata).toEqual({ note: 'x' });
    for (const name of ['a', 'b']) {
      expect(st.entries.get(name)!.shape).toEqual(ref.tensors.get(name)!.shape);
      expect([...await st.read(name)]).toEqual([...ref.tensors.get(name)!.data]);
    }
  });

  it('refuses a truncated file and a header length past the end, with the in-memory messages and the path', async () => {
    const dir = scratch();
    const bytes = writeSafetensors({ a: { shape: [64], data: values(64, 1) } });
    writeFileSync(join(dir, 'cut.safetensors'), bytes.subarray(0, bytes.length - 1));
    await expect(openSafetensors(nodeFolder(dir), 'cut.safetensors')).rejects.toThrow(/cut\.safetensors: safetensors: .*run past the end of the data section/);
    const huge = new Uint8Array(bytes);
    new DataView(huge.buffer).setUint32(0, bytes.length, true);
    writeFileSync(join(dir, 'head.safetensors'), huge);
    await expect(openSafetensors(nodeFolder(dir), 'head.safetensors')).rejects.toThrow(/header length \d+ bytes runs past the end of the file/);
    writeFileSync(join(dir, 'tiny.safetensors'), new Uint8Array(5));
    await expect(openSafetensors(nodeFolder(dir), 'tiny.safetensors')).rejects.toThrow(/shorter than the 8-byte header length/);
  });

  it('reads a folder sharded by diffusion_pytorch_model.safetensors.index.json; refuses a tensor in two shards', async () => {
    const dir = scratch();
    writeFileSync(join(dir, 'diffusion_pytorch_model-00001-of-00002.safetensors'), writeSafetensors({ a: { shape: [2], data: [1, 2] } }));
    writeFileSync(join(dir, 'diffusion_pytorch_model-00002-of-00002.safetensors'), writeSafetensors({ b: { shape: [1], data: [3] } }));
    writeFileSync(join(dir, 'diffusion_pytorch_model.safetensors.index.json'), JSON.stringify({
      metadata: { total_size: 12 }, weight_map: { a: 'diffusion_pytorch_model-00001-of-00002.safetensors', b: 'diffusion_pytorch_model-00002-of-00002.safetensors' },
    }));
    const set = await openSafetensorsFolder(nodeFolder(dir));
    expect([...set.entries.keys()].sort()).toEqual(['a', 'b']);
    expect([...await set.read('b')]).toEqual([3]);
    writeFileSync(join(dir, 'diffusion_pytorch_model-00002-of-00002.safetensors'), writeSafetensors({ a: { shape: [1], data: [3] } }));
    await expect(openSafetensorsFolder(nodeFolder(dir))).rejects.toThrow(/tensor a is in two shards/);
    const bad = scratch();
    writeFileSync(join(bad, 'diffusion_pytorch_model.safetensors.index.json'), JSON.stringify({ weight_map: { a: '../../etc/passwd' } }));
    await expect(openSafetensorsFolder(nodeFolder(bad))).rejects.toThrow(/names the shard "\.\.\/\.\.\/etc\/passwd"/);
    const empty = scratch();
    mkdirSync(join(empty, 'x'));
    await expect(openSafetensorsFolder(nodeFolder(join(empty, 'x')))).rejects.toThrow(/neither diffusion_pytorch_model\.safetensors nor .*index\.json/);
  });

  it('a planned header plus the tensors appended in order is a valid file', async () => {
    const dir = scratch();
    const plan = [{ name: 'onnx::MatMul_7', dtype: 'F32' as const, shape: [2, 3] }, { name: 'w', dtype: 'F16' as const, shape: [3] }];
    const out = await nodeOutput(join(dir, 'out')).begin();
    const file = await openAppender(out, '', 'p.safetensors');
    await file.append(planSafetensors(plan, { content: 'test' }).header);
    await file.append(new Uint8Array(Float32Array.from([1, 2, 3, 4, 5, 6]).buffer));
    await file.append(new Uint8Array(Uint16Array.from([0x3c00, 0x4000, 0xc000]).buffer)); // 1, 2, −2 in binary16
    const written = await file.finish();
    await out.commit();
    const bytes = readFileSync(join(dir, 'out', 'p.safetensors'));
    expect(written.bytes).toBe(bytes.length);
    const back = readSafetensors(new Uint8Array(bytes));
    expect([...back.tensors.get('onnx::MatMul_7')!.data]).toEqual([1, 2, 3, 4, 5, 6]);
    expect([...back.tensors.get('w')!.data]).toEqual([1, 2, -2]);
    expect(back.metadata).toEqual({ content: 'test' });
  });
});
