// A small pairs.json for the embedded model (two pairs of synthetic images at its sample size), written to a temp
// folder for the specs that train or upload pairs.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseManifest } from '../src/model/manifest.ts';
import { encodePairs } from '../src/train/pairs.ts';

export function embeddedPairsPath(): string {
  const manifest = parseManifest(readFileSync('models/manifest.json', 'utf8'));
  const size = manifest.unet.config.sampleSize;
  const image = (flip: number) => Float32Array.from({ length: 3 * size * size }, (_, i) => flip * (((i % size) / size) * 2 - 1));
  const pairs = [{ prompt: manifest.defaults.prompt, winner: image(1), loser: image(-1) }, { prompt: 'a blue square', winner: image(-0.5), loser: image(0.5) }];
  const path = join(mkdtempSync(join(tmpdir(), 'pairs-')), 'pairs.json');
  writeFileSync(path, JSON.stringify(encodePairs(pairs, size, size)));
  return path;
}
