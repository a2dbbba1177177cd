// Playwright global setup: prepares the tiny real-exporter SD1.5 fixture (fixtures/sd15: diffusers' own ONNX export,
// a dense DPO UNet as η, an NPO-style δ LoRA) with `npm run prepare-model`, as a user would (a few seconds).
import { execFileSync } from 'node:child_process';
import { SD15_TEST_MODEL } from './test-models.ts';

const FIXTURE = 'fixtures/sd15';

export default function prepareTestModels() {
  // Quiet unless it fails: execFileSync's error carries prepare-model's own message on stderr.
  execFileSync('npx', ['tsx', '--import', './scripts/raw-imports.mjs', 'src/cli/prepare-model.ts', '--onnx', `${FIXTURE}/export-diffusers`, '--eta-unet', `${FIXTURE}/dpo-unet`,
    '--delta-lora', `${FIXTURE}/delta-diffusers.safetensors`, '--out', SD15_TEST_MODEL], { stdio: 'pipe' });
}
