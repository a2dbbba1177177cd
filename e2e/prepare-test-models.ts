// Playwright global setup: prepares the tiny real-exporter SD1.5 fixture (fixtures/sd15: diffusers' own ONNX export,
// a dense DPO UNet as η, an NPO-style δ LoRA) with `npm run prepare-model`, as a user would, unless an up-to-date
// copy is there already (the fixture's files are older than the prepared manifest).
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { SD15_TEST_MODEL } from './test-models.ts';

const FIXTURE = 'fixtures/sd15';

export default function prepareTestModels() {
  const manifest = `${SD15_TEST_MODEL}/manifest.json`;
  const fresh = existsSync(manifest) && statSync(manifest).mtimeMs > statSync(`${FIXTURE}/README.md`).mtimeMs && statSync(manifest).mtimeMs > statSync('src/cli/prepare-model.ts').mtimeMs;
  if (fresh) return;
  execFileSync('npx', ['tsx', 'src/cli/prepare-model.ts', '--onnx', `${FIXTURE}/export-diffusers`, '--eta-unet', `${FIXTURE}/dpo-unet`,
    '--delta-lora', `${FIXTURE}/delta-diffusers.safetensors`, '--out', SD15_TEST_MODEL], { stdio: ['ignore', 'ignore', 'inherit'] });
}
