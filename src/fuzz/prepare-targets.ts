// Fuzz targets for what preparation in the page reads from outside (src/prepare/, src/model/source/opfs.ts):
//   hub-listing     parseTreeListing: the Hub's (or a `?hub=` mirror's) tree listing          HubError
//   hub-download    hubFolder reading a file through a hostile server: a mutated listing, Content-Range and body
//                   (a fetch that answers from the input); an accepted file must have the listed size and hash  HubError
//   shard-index     parseShardIndex: a diffusers `*.safetensors.index.json`                    Error (its own messages)
//   prepared-folder describePreparedFolder: a folder in browser storage (an unfinished preparation, an older
//                   version's manifest); it never throws: a leftover counts as refused        Leftover
import { createHash } from 'node:crypto';
import { describePreparedFolder } from '../model/source/opfs.ts';
import { hubFolder } from '../prepare/hub-folder.ts';
import { HubError, parseTreeListing } from '../prepare/hub-listing.ts';
import { parseShardIndex } from '../prepare/stream-safetensors.ts';
import { invariant } from './invariant.ts';
import { mutateBytes, mutateJsonText, type Random } from './mutate.ts';
import { preparedSeed } from './prepared-manifest-target.ts';
import type { FuzzTarget, Parts } from './targets.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const gitSha1 = (bytes: Uint8Array) => createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
const isHubError = (e: unknown) => e instanceof HubError;

const FILE = Uint8Array.from({ length: 200 }, (_, i) => (i * 37) & 255);
const listingOf = (lfs: boolean) => JSON.stringify([
  { type: 'directory', oid: 'c'.repeat(40), size: 0, path: 'unet' },
  { type: 'file', oid: gitSha1(FILE), size: FILE.length, path: 'unet/f.bin', ...(lfs ? { lfs: { oid: sha256(FILE), size: FILE.length, pointerSize: 134 } } : {}) },
]);

/** A JSON part mutated as text, now and then as bytes. */
const mutateJson = (r: Random, bytes: Uint8Array) => (r.int(6) === 0 ? mutateBytes(r, bytes) : utf8(mutateJsonText(r, text(bytes))));

function checkListing(t: string) {
  for (const f of parseTreeListing(t, 'fuzz')) {
    invariant(f.path.split('/').every((s) => s && s !== '.' && s !== '..') && !f.path.startsWith('/'), `unsafe path ${JSON.stringify(f.path)} accepted`);
    invariant(Number.isSafeInteger(f.size) && f.size >= 0, `size ${f.size} accepted`);
    invariant(f.sha256 === undefined || /^[0-9a-f]{64}$/.test(f.sha256), `sha256 ${f.sha256} accepted`);
  }
}

const hubListingTarget: FuzzTarget = {
  name: 'hub-listing',
  errorType: 'HubError',
  seeds: () => [[utf8(listingOf(true))], [utf8(listingOf(false))], [utf8('[]')]],
  mutate: (r, [bytes]) => [mutateJson(r, bytes)],
  run: ([bytes]) => checkListing(text(bytes)),
  expected: isHubError,
};

/** Parts: the listing, the file's bytes as served, the Content-Range header, the status. */
const hubDownloadTarget: FuzzTarget = {
  name: 'hub-download',
  errorType: 'HubError',
  seeds: () => [true, false].map((lfs): Parts => [utf8(listingOf(lfs)), FILE, utf8(`bytes 0-${FILE.length - 1}/${FILE.length}`), utf8('206')]),
  mutate(r, [listing, body, range, status]) {
    const c = r.int(4);
    if (c === 0) return [mutateJson(r, listing), body, range, status];
    if (c === 1) return [listing, mutateBytes(r, body), range, status];
    if (c === 2) return [listing, body, mutateBytes(r, range), status];
    return [listing, body, range, utf8(String([200, 206, 404, 401, 403, 416, 429, 500, 302][r.int(9)]))];
  },
  // A valid file of another target's kind comes as one part: the rest default to an empty body and a 206.
  async run([listing, body = new Uint8Array(0), range = new Uint8Array(0), statusText = utf8('206')]) {
    const status = Number(text(statusText)) || 206;
    const fakeFetch = (async (url: string) => {
      if (url.includes('/api/models/')) return new Response(new Uint8Array(listing), { status: 200 });
      const ok = status >= 200 && status < 300;
      return new Response(ok ? new Uint8Array(body) : null, { status: status === 302 ? 500 : status, headers: { 'content-range': text(range).replace(/[\r\n]/g, ''), etag: '"x"' } });
    }) as typeof fetch;
    const folder = hubFolder({ endpoint: 'https://hub.test', repo: 'a/b', revision: 'main', folder: 'unet' }, { fetch: fakeFetch, tries: 2, retryDelayMs: 0 });
    const size = await folder.size('f.bin');
    if (size === undefined) return;
    const bytes = await folder.read('f.bin', 0, size);
    invariant(bytes.length === size, `${bytes.length} bytes returned for a read of ${size}`);
    // The parser took the file's hashes from its one listing entry: a hex string published there must match.
    const entry = (JSON.parse(text(listing)) as { path?: unknown; lfs?: { oid?: unknown }; oid?: unknown }[]).find((e) => e?.path === 'unet/f.bin');
    const hex = (v: unknown, n: number): v is string => typeof v === 'string' && v.length === n && /^[0-9a-f]+$/.test(v);
    const [lfsOid, gitOid] = [entry?.lfs?.oid, entry?.oid];
    invariant(hex(lfsOid, 64) ? sha256(bytes) === lfsOid : !hex(gitOid, 40) || gitSha1(bytes) === gitOid, 'a file whose hash differs from the published one was accepted');
  },
  expected: (e) => e instanceof HubError || (e instanceof Error && e.message.startsWith('could not reach the Hub')),
};

const shardIndexTarget: FuzzTarget = {
  name: 'shard-index',
  errorType: 'Error',
  seeds: () => [[utf8(JSON.stringify({ metadata: { total_size: 3438167536 }, weight_map: { 'conv_in.weight': 'diffusion_pytorch_model-00001-of-00002.safetensors', 'conv_out.bias': 'diffusion_pytorch_model-00002-of-00002.safetensors' } }))]],
  mutate: (r, [bytes]) => [mutateJson(r, bytes)],
  run([bytes]) {
    for (const f of parseShardIndex(text(bytes), 'fuzz.index.json')) invariant(f !== '' && !/[\\/]/.test(f) && !f.startsWith('.'), `shard name ${JSON.stringify(f)} accepted`);
  },
  // Its refusals are plain Errors with their own messages; TypeError, RangeError … are crashes.
  expected: (e) => e instanceof Error && e.constructor === Error,
};

/** describePreparedFolder never throws; a folder it calls a leftover is what the page refuses to open. */
class Leftover extends Error {}

/** Parts: the folder's name, its manifest.json (an empty part: none). */
const preparedFolderTarget: FuzzTarget = {
  name: 'prepared-folder',
  errorType: 'Leftover',
  seeds: () => [[utf8('sd15-npo-lx2k3'), utf8(JSON.stringify(preparedSeed('sd15')))], [utf8('sdxl-m0'), utf8(JSON.stringify(preparedSeed('sdxl')))], [utf8('old-run-1'), new Uint8Array(0)]],
  mutate: (r, [name, manifest]) => (r.int(4) === 0 || manifest.length === 0 ? [mutateBytes(r, name), manifest] : [name, mutateJson(r, manifest)]),
  run([name, manifest = new Uint8Array(0)]) {
    const entry = describePreparedFolder(text(name), manifest.length ? text(manifest) : undefined, 1234);
    invariant((entry.manifest !== undefined) !== (entry.leftover !== undefined), 'a folder that is both a model and a leftover, or neither');
    invariant(entry.manifest === undefined || entry.name === entry.manifest.name, 'the listed name is not the manifest\'s');
    if (entry.leftover) throw new Leftover(entry.leftover);
  },
  expected: (e) => e instanceof Leftover,
};

export const PREPARE_TARGETS: FuzzTarget[] = [hubListingTarget, hubDownloadTarget, shardIndexTarget, preparedFolderTarget];
