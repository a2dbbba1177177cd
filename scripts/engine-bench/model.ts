// Node-only: the engine benchmark's command-line options and model files, shared by `npm run bench` (Node) and
// `npm run bench:chromium` (which serves the same files to the page): the tiny fixture by default, or models/.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseManifest, type ModelManifest } from '../../src/model/manifest.ts';
import { buildTinyModel } from '../../src/worker/tiny-model.ts';
import type { BenchBackend } from './measure.ts';

export interface BenchArgs { model: 'tiny' | 'embedded'; steps: number; repeats: number; backends: BenchBackend[] }

/** `--model embedded`, `--steps N`, `--repeats R` (runs per median), `--backend webgpu|wasm` (both when absent). */
export function benchArgs(argv: string[]): BenchArgs {
  const arg = (name: string) => (argv.indexOf(name) >= 0 ? argv[argv.indexOf(name) + 1] : undefined);
  const backend = arg('--backend');
  if (backend && backend !== 'webgpu' && backend !== 'wasm') throw new Error(`--backend ${backend}: expected webgpu or wasm`);
  const backends: BenchBackend[] = backend ? [backend as BenchBackend] : ['webgpu', 'wasm'];
  return {
    model: arg('--model') === 'embedded' ? 'embedded' : 'tiny',
    steps: Number(arg('--steps') ?? 4),
    repeats: Math.max(1, Number(arg('--repeats') ?? 5)),
    backends,
  };
}

export function loadBenchModel(model: BenchArgs['model']): { manifest: ModelManifest; files: Map<string, Uint8Array> } {
  if (model !== 'embedded') return buildTinyModel();
  const dir = join(import.meta.dirname, '../../models');
  const manifest = parseManifest(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  return { manifest, files: new Map(manifest.files.map((f) => [f.path, new Uint8Array(readFileSync(join(dir, f.path)))])) };
}
