// The CLIP score against PyTorch (scripts/fixtures/make_clip_fixture.py: transformers' CLIPModel and
// CLIPImageProcessor on seeded noise images): pixel_values equal the processor's (PIL's bicubic resize bit for bit),
// and the score from the transformers.js export run by onnxruntime-node equals torchmetrics' CLIPScore of the model.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as transformers from '@huggingface/transformers';
import { describe, expect, it } from 'vitest';
import { readClipFolder, TINY_CLIP_DIRS } from './clip-files-node.ts';
import { clipPixelValues, parseClipImageConfig, resizedSize } from './clip-preprocess.ts';
import { filesFromList, loadClipScorer } from './clip-score.ts';
import { buildTokenizerFiles } from '../text/tokenizer-files.ts';
import { resizeBicubicRgb } from './pil-resize.ts';

interface Case { prompt: string; width: number; height: number; rgb: number[]; pixel_values: number[]; cosine: number; clip_score: number }
const refs = JSON.parse(readFileSync('fixtures/clip-tiny/references.json', 'utf8')) as { cases: Case[] };
const config = parseClipImageConfig(JSON.parse(readFileSync('fixtures/clip-tiny/preprocessor_config.json', 'utf8')));

describe('CLIPImageProcessor in TypeScript', () => {
  it.each(refs.cases.map((c) => [`${c.width}×${c.height}`, c] as const))('pixel_values of a %s image equal transformers\' (PIL bicubic) within 1e-6', (_, c) => {
    const pv = clipPixelValues(new Uint8Array(c.rgb), c.width, c.height, config);
    expect([pv.height, pv.width]).toEqual([32, 32]);
    // The JSON keeps 7 decimals; one 8-bit step is 1/255/std ≈ 0.015, so 1e-6 means every resized byte is PIL's.
    let worst = 0;
    pv.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - c.pixel_values[i]))));
    expect(worst).toBeLessThan(1e-6);
  });

  it('resizes the shortest side as transformers does (int() of the long side) and keeps same-size images', () => {
    expect(resizedSize(40, 56, { shortestEdge: 32 })).toEqual([32, 44]);
    expect(resizedSize(26, 20, { shortestEdge: 32 })).toEqual([41, 32]);
    const rgb = Uint8Array.from({ length: 4 * 3 * 3 }, (_, i) => (i * 37) % 256);
    expect(resizeBicubicRgb(rgb, 4, 3, 4, 3)).toEqual(rgb);
  });

  it('reads old-style configs (int size and crop) and refuses what it cannot do exactly', () => {
    expect(parseClipImageConfig({ size: 224, crop_size: 224 })).toMatchObject({ resize: { shortestEdge: 224 }, crop: { height: 224, width: 224 } });
    expect(() => parseClipImageConfig({ resample: 2 })).toThrow(/resample 2 is not supported/);
    expect(() => parseClipImageConfig({ size: { shortest_edge: -3 } })).toThrow(/size.shortest_edge must be an integer/);
    expect(() => parseClipImageConfig({ image_mean: [0.5] })).toThrow(/image_mean must be three numbers/);
  });
});

describe('CLIP score through @huggingface/transformers', () => {
  it('equals torchmetrics CLIPScore of the PyTorch model: cosine within 2e-6, score within 2e-4', async () => {
    const scorer = await loadClipScorer(transformers, readClipFolder(...TINY_CLIP_DIRS), 'cpu');
    try {
      expect(scorer.description).toMatch(/^fp32, /);
      for (const c of refs.cases) {
        const got = await scorer.score(new Uint8Array(c.rgb), c.width, c.height, c.prompt);
        // float32 embeddings (8 and 16 wide here): ORT and PyTorch sum in different orders.
        expect(Math.abs(got.cosine - c.cosine)).toBeLessThan(2e-6);
        expect(Math.abs(got.score - c.clip_score)).toBeLessThan(2e-4);
      }
    } finally {
      await scorer.dispose();
    }
  });

  it('reads a folder with tokenizer.json (as transformers.js exports ship) to the same scores', async () => {
    const files = readClipFolder(...TINY_CLIP_DIRS);
    const text = (path: string) => readFileSync(join(TINY_CLIP_DIRS[1], path), 'utf8');
    const { tokenizerJson } = buildTokenizerFiles({ vocab: text('vocab.json'), merges: text('merges.txt'), tokenizerConfig: text('tokenizer_config.json') });
    files.set('tokenizer.json', new Blob([JSON.stringify(tokenizerJson)]));
    files.delete('vocab.json');
    files.delete('merges.txt');
    const scorer = await loadClipScorer(transformers, files, 'cpu');
    const c = refs.cases[2];
    expect(Math.abs((await scorer.score(new Uint8Array(c.rgb), c.width, c.height, c.prompt)).cosine - c.cosine)).toBeLessThan(2e-6);
    await scorer.dispose();
  });

  it('takes paths relative to the chosen folder (a browser gives "folder/onnx/…")', () => {
    const file = (name: string, relative: string) => Object.assign(new File(['x'], name), { webkitRelativePath: relative });
    expect([...filesFromList([file('config.json', 'clip/config.json'), file('text_model.onnx', 'clip/onnx/text_model.onnx'), file('a.json', '')]).keys()])
      .toEqual(['config.json', 'onnx/text_model.onnx', 'a.json']);
  });

  it('names what a folder lacks', async () => {
    const files = readClipFolder(...TINY_CLIP_DIRS);
    files.delete('onnx/vision_model.onnx');
    await expect(loadClipScorer(transformers, files, 'cpu')).rejects.toThrow(/missing onnx\/vision_model.onnx/);
    const noTokenizer = readClipFolder(TINY_CLIP_DIRS[0]);
    await expect(loadClipScorer(transformers, noTokenizer, 'cpu')).rejects.toThrow(/no tokenizer/);
  });
});
