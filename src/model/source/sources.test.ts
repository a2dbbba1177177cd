// The model sources that read by position (memory, a chosen folder's Files, a directory on disk), on the embedded
// model's real files: chunks tile the file at every chunk size, `read` returns the manifest's bytes, and a corrupt,
// short, long or missing file is refused with its specific message before its last chunk is handed out. The URL
// source (network and cache) is url.test.ts.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAnyManifest, type ManifestFile } from '../manifest.ts';
import { openChosenFiles } from './chosen-files.ts';
import { memorySource } from './memory.ts';
import { openModelDirectory } from './node-directory.ts';
import type { ModelChunk, ModelSource, StreamOptions } from './source.ts';

const MODELS = new URL('../../../models/', import.meta.url);
/** A small file of odd size beside the model's, for chunks of a few bytes. */
const ODD = 'odd.bin';
const oddBytes = Uint8Array.from({ length: 4099 }, (_, i) => (i * 2654435761) >>> 24);
const manifestText = (() => {
  const m = JSON.parse(readFileSync(new URL('manifest.json', MODELS), 'utf8'));
  m.files.push({ path: ODD, bytes: oddBytes.byteLength, sha256: createHash('sha256').update(oddBytes).digest('hex') });
  return JSON.stringify(m);
})();
const manifest = parseAnyManifest(manifestText);
const original = new Map(manifest.files.map((f) => [f.path, f.path === ODD ? oddBytes : new Uint8Array(readFileSync(new URL(f.path, MODELS)))]));
const WEIGHTS = 'unet.onnx.data'; // 4.2 MB
const GRAPH = 'unet.onnx';

/** The same files with one changed: a flipped byte, cut short, or grown. */
function withFile(path: string, change: (bytes: Uint8Array) => Uint8Array): Map<string, Uint8Array> {
  return new Map([...original].map(([p, bytes]) => [p, p === path ? change(bytes.slice()) : bytes]));
}
const flipByte = (at: number) => (bytes: Uint8Array) => ((bytes[at] ^= 0x01), bytes);

const scratch = mkdtempSync(join(tmpdir(), 'model-source-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let dirs = 0;

/** Each kind of positional source over the given file contents. */
const KINDS: Record<string, (files: Map<string, Uint8Array>) => Promise<ModelSource>> = {
  memory: async (files) => memorySource(manifest, files),
  'chosen files': async (files) => openChosenFiles([...files, ['manifest.json', new TextEncoder().encode(manifestText)] as const].map(([path, bytes]) => {
    const file = new File([bytes as Uint8Array<ArrayBuffer>], path.split('/').pop()!);
    return Object.defineProperty(file, 'webkitRelativePath', { value: `picked/${path}` }); // as <input webkitdirectory> names them
  })),
  'disk directory': async (files) => {
    const dir = join(scratch, `d${dirs++}`);
    mkdirSync(dir);
    for (const [path, bytes] of [...files, ['manifest.json', manifestText] as const]) writeFileSync(join(dir, path), bytes, { flag: 'w' });
    return openModelDirectory(dir);
  },
};

async function collect(source: ModelSource, path: string, options?: StreamOptions): Promise<ModelChunk[]> {
  const chunks: ModelChunk[] = [];
  for await (const chunk of source.stream(path, options)) chunks.push({ offset: chunk.offset, bytes: chunk.bytes.slice() });
  return chunks;
}

/** Chunks received before an error, and the error. */
async function collectUntilError(source: ModelSource, path: string, options?: StreamOptions) {
  const chunks: ModelChunk[] = [];
  try {
    for await (const chunk of source.stream(path, options)) chunks.push(chunk);
  } catch (error) {
    return { chunks, error: error as Error };
  }
  throw new Error(`${path} streamed without an error`);
}

const entryOf = (path: string) => manifest.files.find((f) => f.path === path) as ManifestFile;

for (const [kind, open] of Object.entries(KINDS)) {
  describe(`${kind} source`, () => {
    it('streams chunks that tile the file in order, at chunk sizes around 4-byte alignment and larger than the file', async () => {
      const source = await open(original);
      // Chunks of a few bytes on a 4 kB file, MiB-sized ones on the 4 MB weights.
      const cases = [[1, 2, 3, 5, 4098, 4099].map((n) => [n, ODD] as const), [1 << 20, 1_000_003, 8 << 20].map((n) => [n, WEIGHTS] as const)].flat();
      for (const [chunkBytes, path] of cases) {
        const bytes = original.get(path)!;
        const chunks = await collect(source, path, { chunkBytes });
        const expected = Math.ceil(bytes.byteLength / chunkBytes);
        expect(chunks.length, `chunkBytes ${chunkBytes}`).toBe(expected);
        let next = 0;
        for (const c of chunks) {
          expect(c.offset).toBe(next);
          expect(c.bytes.byteLength).toBe(Math.min(chunkBytes, bytes.byteLength - next));
          next += c.bytes.byteLength;
        }
        expect(Buffer.from(assemble(chunks, bytes.byteLength)).equals(Buffer.from(bytes))).toBe(true);
      }
    });

    it('reads every listed file whole, equal to the files, with byte progress ending at the size', async () => {
      const source = await open(original);
      for (const entry of manifest.files) {
        const progress: number[] = [];
        const bytes = await source.read(entry.path, { onBytes: (received) => progress.push(received) });
        expect(Buffer.from(bytes).equals(Buffer.from(original.get(entry.path)!))).toBe(true);
        expect(progress.at(-1)).toBe(entry.bytes);
        expect(progress).toEqual([...progress].sort((a, b) => a - b));
      }
      // Reading again reads (and checks) again.
      expect((await source.read(GRAPH)).byteLength).toBe(entryOf(GRAPH).bytes);
    });

    it('a flipped byte fails the SHA-256 check, and the chunk that ends the file is never handed out', async () => {
      const source = await open(withFile(WEIGHTS, flipByte(4_000_000)));
      const { chunks, error } = await collectUntilError(source, WEIGHTS, { chunkBytes: 1 << 20 });
      expect(error.message).toMatch(new RegExp(`^unet\\.onnx\\.data: SHA-256 [0-9a-f]{12}… does not match the manifest's ${entryOf(WEIGHTS).sha256.slice(0, 12)}…$`));
      expect(chunks.map((c) => c.offset)).toEqual([0, 1, 2, 3].map((i) => i << 20)); // not 4 MiB, the last
      await expect(source.read(WEIGHTS)).rejects.toThrow(/SHA-256/);
    });

    it('a short or a long file is refused with both sizes before a byte is handed out', async () => {
      const size = entryOf(GRAPH).bytes;
      const short = await collectUntilError(await open(withFile(GRAPH, (b) => b.subarray(0, 1000))), GRAPH);
      expect(short.error.message).toBe(`unet.onnx: expected ${size} bytes, got 1000 (truncated or replaced file)`);
      const long = await collectUntilError(await open(withFile(GRAPH, (b) => Uint8Array.from([...b, 1, 2, 3]))), GRAPH);
      expect(long.error.message).toBe(`unet.onnx: expected ${size} bytes, got ${size + 3} (truncated or replaced file)`);
      expect([...short.chunks, ...long.chunks]).toEqual([]);
    });

    it('a listed file that is missing, and a path the manifest does not list, are named', async () => {
      const source = await open(new Map([...original].filter(([p]) => p !== 'eta.safetensors')));
      await expect(source.read('eta.safetensors')).rejects.toThrow(/^eta\.safetensors is listed in the manifest but (missing from|was not provided)/);
      await expect(source.read('secrets.txt')).rejects.toThrow('secrets.txt is not listed in the model\'s manifest');
    });

    it('stops at the next chunk when its signal aborts, with an AbortError', async () => {
      const source = await open(original);
      const controller = new AbortController();
      const seen: number[] = [];
      const run = async () => {
        for await (const chunk of source.stream(WEIGHTS, { chunkBytes: 1 << 20, signal: controller.signal })) {
          seen.push(chunk.offset);
          controller.abort();
        }
      };
      await expect(run()).rejects.toMatchObject({ name: 'AbortError' });
      expect(seen).toEqual([0]);
    });
  });
}

describe('memory source', () => {
  it('hands out views of the given arrays: reading a file whole copies nothing', async () => {
    const source = memorySource(manifest, original);
    expect((await source.read(WEIGHTS)).buffer).toBe(original.get(WEIGHTS)!.buffer);
  });

  it('refuses a chunk size that is not a positive integer', () => {
    const source = memorySource(manifest, original);
    for (const chunkBytes of [0, -4, 2.5, Number.NaN]) expect(() => source.stream(WEIGHTS, { chunkBytes })).toThrow(/chunkBytes .* is not a positive integer/);
  });
});

function assemble(chunks: ModelChunk[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (const c of chunks) out.set(c.bytes, c.offset);
  return out;
}
