// Preparation from a Hugging Face Hub repository (hub-folder.ts) against a local server with the Hub's URL layout,
// redirects, ranges, listing and hashes (e2e/fake-hub.ts) serving the real-exporter fixtures: the prepared model
// equals the one prepared from the same folders on disk, file for file; a dropped connection is resumed; a missing
// repository or file, a truncated response, a file larger or smaller than announced and a wrong file each stop with
// their own error and leave the output folder as it was.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeHub, type FakeHub } from '../../e2e/fake-hub.ts';
import { hubFolder, type HubFolderOptions } from './hub-folder.ts';
import { nodeOutput, prepareFromPaths } from './node-io.ts';
import { prepareModel } from './prepare.ts';

const FIXTURE = 'fixtures/sd15';
let hub: FakeHub;
const scratch = () => mkdtempSync(join(tmpdir(), 'hub-prepare-'));

beforeAll(async () => {
  hub = await startFakeHub({ 'test/sd15-onnx': join(FIXTURE, 'export-diffusers'), 'test/dpo-sd15': join(FIXTURE, 'dpo-unet'), 'test/npo': FIXTURE });
});
afterAll(() => hub.close());

/** Small `wholeFileBytes`: the weights, the text encoder's inline graph and the DPO UNet take the streaming path. */
function fromHub(out: string, options: HubFolderOptions = {}, repo = 'test/sd15-onnx') {
  const folder = (r: string) => hubFolder({ endpoint: hub.url, repo: r, revision: 'main', folder: '' }, { wholeFileBytes: 4096, retryDelayMs: 1, ...options });
  const onnx = folder(repo), etaUnet = folder('test/dpo-sd15'), npo = folder('test/npo');
  const run = prepareModel({ onnx, etaUnet, deltaLora: [{ folder: npo, path: 'delta-diffusers.safetensors', scale: 1 }], out: nodeOutput(out) });
  return { run, folders: [onnx, etaUnet, npo] };
}

const fileList = (dir: string) => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).files as { path: string; sha256: string }[];

describe('prepare from the Hub (fake Hub on 127.0.0.1)', () => {
  it('equals the preparation from the same folders on disk, file for file; a dropped connection resumes', async () => {
    const local = join(scratch(), 'local');
    await prepareFromPaths({ onnx: join(FIXTURE, 'export-diffusers'), etaUnet: join(FIXTURE, 'dpo-unet'), deltaLora: join(FIXTURE, 'delta-diffusers.safetensors'), out: local });
    hub.requests.length = 0;
    hub.faults = { cut: { path: 'test/sd15-onnx/unet/weights.pb', afterBytes: 300_000, times: 2 } };
    const out = join(scratch(), 'hub');
    const { run, folders } = fromHub(out);
    const { manifest } = await run;
    expect(fileList(out)).toEqual(fileList(local));
    expect(manifest.source.onnx).toBe('hub:test/sd15-onnx@main');
    // Two cuts, two resumes from the byte where each stopped.
    const weights = hub.requests.filter((r) => r.includes('weights.pb') || r.startsWith('GET /cdn/'));
    expect(hub.requests.filter((r) => r.includes('/resolve/main/unet/weights.pb'))).toHaveLength(1); // later ones go to the CDN URL directly
    expect(weights.length).toBeGreaterThan(2);
    // Every file read passed the Hub's published hash (SHA-256 for LFS files, git SHA-1 for small ones).
    expect(folders.flatMap((f) => f.checked()).filter((c) => !c.hashChecked)).toEqual([]);
  });

  const failures: [string, () => void, string, RegExp][] = [
    ['a repository that does not exist', () => undefined, 'test/nothing', /no such repository or revision, or it is private or gated \(HTTP 401, RepoNotFound\)/],
    ['a listed file the Hub answers 404 for', () => void (hub.faults = { missing: ['test/sd15-onnx/unet/weights.pb'] }), 'test/sd15-onnx', /unet\/weights\.pb \(revision main\): not found on the Hub \(HTTP 404, EntryNotFound\)/],
    ['a response that always breaks off (truncated)', () => void (hub.faults = { cut: { path: 'test/sd15-onnx/unet/weights.pb', afterBytes: 0, times: 99 } }), 'test/sd15-onnx', /weights\.pb.*(truncated|broke off)/],
    ['a file larger than announced', () => void (hub.faults = { announceSize: { 'test/npo/delta-diffusers.safetensors': 30_000 } }), 'test/sd15-onnx', /delta-diffusers\.safetensors \(revision main\) is 36632 bytes, but the Hub's listing announced 30000 \(larger than announced/],
    ['a file smaller than announced', () => void (hub.faults = { announceSize: { 'test/sd15-onnx/unet/weights.pb': 900_000 } }), 'test/sd15-onnx', /weights\.pb \(revision main\) is 799232 bytes, but the Hub's listing announced 900000 \(smaller/],
    ['a wrong file (another SHA-256 than published)', () => void (hub.faults = { announceSha256: { 'test/sd15-onnx/unet/weights.pb': 'ab'.repeat(32) } }), 'test/sd15-onnx', /weights\.pb.*differs from the Hub's published abababababab/],
  ];
  for (const [what, fault, repo, message] of failures) {
    it(`${what}: a specific error, nothing left in the output`, async () => {
      fault();
      const out = join(scratch(), 'model');
      await expect(fromHub(out, {}, repo).run).rejects.toThrow(message);
      hub.faults = {};
      expect(existsSync(out)).toBe(false);
      expect(existsSync(`${out}.partial-${process.pid}`)).toBe(false);
    });
  }
});
