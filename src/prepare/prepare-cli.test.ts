// The prepare-model CLI (src/cli/prepare-model.ts) as a person runs it on the real tiny export: progress on stderr,
// the summary table, the manifest path on stdout; bad arguments and bad input exit 1 with a one-line reason.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'prepare-cli-'));

async function prepare(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(join(root, 'node_modules/.bin/tsx'), ['--import', './scripts/raw-imports.mjs', 'src/cli/prepare-model.ts', ...args], { cwd: root });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('npm run prepare-model', () => {
  it('prepares fixtures/sd15 with a δ: progress, summary table, verification line, manifest path', async () => {
    const out = join(dir, 'ok');
    const run = await prepare(['--onnx', 'fixtures/sd15/export-diffusers', '--delta-lora', 'fixtures/sd15/delta-peft.safetensors', '--out', out, '--shard-mb', '1']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim().split('\n').at(-1)).toBe(join(out, 'manifest.json'));
    expect(run.stderr).toMatch(/^unet: [\d.]+ kB \/ [\d.]+ kB \(100\.0%\)$/m);
    expect(run.stderr).toMatch(/^component +tensors +bytes +shards$/m);
    expect(run.stderr).toMatch(/^text_encoder +\d+ +[\d.]+ MB +2$/m); // the 6.3 MB token embedding alone (over 1 MiB), then the rest
    expect(run.stderr).toMatch(/^delta \(LoRA\) +\d+ +[\d.]+ kB +1$/m);
    expect(run.stderr).toMatch(/^verified \d+ files \(sizes, SHA-256, external-data ranges\) in [\d.]+ s; peak RSS [\d.]+ MB$/m);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(manifest.textEncoder.externalData).toEqual(['text_encoder/weights-00.bin', 'text_encoder/weights-01.bin']);
    expect(manifest.offsets.delta.kind).toBe('lora');
  });

  it('missing flags, a bad --dtype and a missing export exit 1 with the reason', async () => {
    const none = await prepare([]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^prepare-model: --onnx and --out are required\nusage: npm run prepare-model/);
    const dtype = await prepare(['--onnx', 'x', '--out', join(dir, 'd'), '--dtype', 'int8']);
    expect(dtype.stderr).toMatch(/--dtype must be float32 or float16, got int8/);
    const missing = await prepare(['--onnx', join(dir, 'nowhere'), '--out', join(dir, 'm')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^prepare-model: export folder .*nowhere does not exist$/m);
    expect(existsSync(join(dir, 'm'))).toBe(false);
  });
});
