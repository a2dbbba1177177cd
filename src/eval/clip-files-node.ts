// Node only: a CLIP folder on disk as the ClipFiles map the scorer reads (the page gets the same map from a folder
// picker). Several folders may be merged (later ones add files): the tiny test export keeps its tokenizer files in
// the SD1.5 fixture's tokenizer/ folder.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { ClipFiles } from './clip-score.ts';

export function readClipFolder(...dirs: string[]): ClipFiles {
  const files: ClipFiles = new Map();
  const add = (dir: string, root: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) add(path, root);
      else if (!files.has(relative(root, path))) files.set(relative(root, path), new Blob([readFileSync(path)]));
    }
  };
  for (const dir of dirs) add(dir, dir);
  return files;
}

/** The committed tiny CLIP export with its tokenizer (scripts/fixtures/make_clip_fixture.py). */
export const TINY_CLIP_DIRS = ['fixtures/clip-tiny', 'fixtures/sd15/export-diffusers/tokenizer'];
