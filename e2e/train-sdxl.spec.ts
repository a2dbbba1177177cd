// Training δ in the page on a prepared SDXL model (the tiny optimum-export fixture, prepared by
// e2e/prepare-test-models.ts): the panel proposes SDXL's β_dpo 2000, the worker encodes the prompts through both text
// encoders and the images through the VAE encoder, and gets the same losses as `trainLora` in Node on onnxruntime-node;
// the δ changes only the NPO image and downloads in diffusers keys on all 136 attention projections. WASM only, as the
// SD1.5 spec: a WebGPU training step on SwiftShader takes minutes.
import { expect, test } from '@playwright/test';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodePairs, parsePairs } from '../src/train/pairs.ts';
import { backendOf, waitIdle } from './helpers.ts';
import { expectTrainingLikeNode, useAndDownload } from './sd15-training.ts';
import { SDXL_TEST_MODEL, SDXL_TEST_MODEL_URL } from './test-models.ts';

const S = 64; // the fixture's image size
/** A 64² SDXL generation in embedded-model generations (as e2e/sdxl.spec.ts). */
const SDXL_GENERATION = 4;

test('trains δ on a prepared SDXL model with the same losses as Node, uses it, and downloads it', async ({ page }, info) => {
  test.skip(backendOf(info) !== 'wasm', 'a WebGPU training step on SwiftShader takes minutes at this size; WASM checks the worker path');
  const image = (v: number) => Float32Array.from({ length: 3 * S * S }, (_, i) => v + 0.2 * Math.sin(i / 7));
  const path = join(mkdtempSync(join(tmpdir(), 'pairs-sdxl-')), 'pairs.json');
  writeFileSync(path, JSON.stringify(encodePairs([{ prompt: 'a red square', winner: image(0.6), loser: image(-0.5) }], S, S)));
  const steps = 2;
  await page.goto(`/?backend=wasm&model=${encodeURIComponent(SDXL_TEST_MODEL_URL)}&steps=2&width=${S}&height=${S}`);
  await waitIdle(page, info, { load: true, steps: 2, generations: SDXL_GENERATION });
  await page.getByTestId('pairs-file').setInputFiles(path);
  // setup: the 16,691-node training graph, 85 s to a session in Node at load ~6 (≈ 20 training steps at calibration)
  const model = { dir: SDXL_TEST_MODEL, generation: SDXL_GENERATION, beta: 2000, setupSteps: 40 };
  await expectTrainingLikeNode(page, info, parsePairs(readFileSync(path, 'utf8'), { width: S, height: S }), S, steps, model);

  const saved = await useAndDownload(page, info, SDXL_GENERATION);
  expect([...saved.tensors.keys()].filter((k) => k.endsWith('.lora.down.weight'))).toHaveLength(136);
  expect(saved.metadata?.beta_dpo).toBe('2000');
});
