// Playwright global setup: prepares the tiny real-exporter SD1.5 fixture (fixtures/sd15: diffusers' own ONNX export,
// a dense DPO UNet as η, an NPO-style δ LoRA) and the tiny SDXL fixture (fixtures/sdxl: optimum's SDXL export, with
// the shared CLIP vocabulary put back by scripts/fixtures/sdxl-export.ts) with `npm run prepare-model`, as a user
// would (a few seconds each). The SDXL δ is a stack of two LoRAs, the second at scale 0.8 (the SPO+NPO recipe's shape).
import { execFileSync } from 'node:child_process';
import { assembleSdxlExport } from '../scripts/fixtures/sdxl-export.ts';
import { SD15_TEST_MODEL, SDXL_TEST_MODEL } from './test-models.ts';

const FIXTURE = 'fixtures/sd15';

export default function prepareTestModels() {
  // Quiet unless it fails: execFileSync's error carries prepare-model's own message on stderr.
  execFileSync('npx', ['tsx', '--import', './scripts/raw-imports.mjs', 'src/cli/prepare-model.ts', '--onnx', `${FIXTURE}/export-diffusers`, '--eta-unet', `${FIXTURE}/dpo-unet`,
    '--delta-lora', `${FIXTURE}/delta-diffusers.safetensors`, '--out', SD15_TEST_MODEL], { stdio: 'pipe' });
  execFileSync('npx', ['tsx', '--import', './scripts/raw-imports.mjs', 'src/cli/prepare-model.ts', '--onnx', assembleSdxlExport(), '--eta-unet', 'fixtures/sdxl/dpo-unet',
    '--delta-lora', 'fixtures/sdxl/delta-diffusers.safetensors', '--delta-lora', 'fixtures/sdxl/npo-attn1.safetensors:0.8', '--out', SDXL_TEST_MODEL], { stdio: 'pipe' });
}
