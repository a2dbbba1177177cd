// Every scheduler the page offers gives a clean image from the embedded model at its usual step count (issue 3).
// "Clean" is judged by the project's fixed reward (src/reward): the sharpness and cleanliness parts of its detail axis
// (crisp edges, no blur, no speckle; the axis also asks for the nominal amount of edge, which is about what is drawn)
// must clear a threshold that pure noise does not (checked below, so the test can fail). Prompt fidelity and hue are
// not asked for: whether the tiny model draws the right object is the model's quality, not the scheduler's (with
// seed 7, DPM++ 2M SDE Karras misses the object here and draws a clean black background).
// The tests share one page (sharedPageTest in helpers.ts): the first opens it with its settings in the URL, each later
// one sets the prompt, seed, steps and scheduler it needs on that page, which then generates once with all of them.
// The image judged is the one without NPO of the DPO model (η on, `eta=on`), as when the threshold was set; the page
// itself opens with η off (first-look.spec.ts).
import { expect, type Page, type TestInfo } from '@playwright/test';
import { DEFAULT_STEPS, NEEDS_DISTILLED_MODEL, SCHEDULER_NAMES, type SchedulerName } from '../src/diffusion/schedulers/index.ts';
import { scoreImage } from '../src/reward/index.ts';
import { backendOf, isBlank, pixels, sharedPageTest as test, waitIdle } from './helpers.ts';

const PROMPT = 'a small orange square in the center on a black background';
const MIN_DETAIL = 0.6;

/** Crisp and clean: the mean of the detail axis's sharpness and speckle-free parts, in [0, 1]. */
function crispness(image: Float32Array): number {
  const { parts } = scoreImage(image, PROMPT);
  return 0.5 * parts.sharpness + 0.5 * parts.clean;
}

function rgbaToChw(rgba: number[]): Float32Array {
  const plane = rgba.length / 4;
  const chw = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) chw[c * plane + p] = rgba[p * 4 + c] / 127.5 - 1;
  return chw;
}

test('the thresholds reject noise', () => {
  let s = 1;
  const noise = Float32Array.from({ length: 3 * 32 * 32 }, () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1);
  expect(crispness(noise)).toBeLessThan(MIN_DETAIL);
});

for (const scheduler of SCHEDULER_NAMES.filter((name) => !NEEDS_DISTILLED_MODEL.has(name))) {
  test(`${scheduler} at ${DEFAULT_STEPS[scheduler]} steps gives a clean image`, async ({ sharedPage: page }, info) => {
    test.skip(backendOf(info) === 'webgpu', 'WebGPU on SwiftShader takes seconds per UNet call; backend parity is covered by gpu-parity.spec.ts');
    await generateWith(page, info, scheduler);
    await expect(page.getByTestId('steps')).toHaveValue(String(DEFAULT_STEPS[scheduler]));
    await expect(page.getByTestId('seed')).toHaveValue('7');
    await expect(page.getByTestId('prompt')).toHaveValue(PROMPT);
    await expect(page.getByTestId('scheduler')).toHaveValue(scheduler);
    const crisp = crispness(rgbaToChw(await pixels(page, 'image-baseline')));
    expect(crisp, `crispness ${crisp.toFixed(3)}`).toBeGreaterThanOrEqual(MIN_DETAIL);
  });
}

/**
 * Shows `scheduler`'s image at its usual steps with PROMPT and seed 7: the first test opens the page with them in the
 * URL; later ones type prompt, seed and steps in (no generation until a commit) and choose the scheduler, whose change
 * generates once with all of them. Then waits for those images.
 */
async function generateWith(page: Page, info: TestInfo, scheduler: SchedulerName) {
  const settings = { prompt: PROMPT, seed: '7', steps: String(DEFAULT_STEPS[scheduler]) };
  if (isBlank(page)) await page.goto(`/?${new URLSearchParams({ backend: backendOf(info), scheduler, eta: 'on', ...settings })}`);
  else {
    await waitIdle(page, info);
    for (const [id, value] of Object.entries(settings)) await page.getByTestId(id).fill(value);
    await page.getByTestId('scheduler').selectOption(scheduler);
    await page.getByTestId('generate').click(); // a no-op when the change already generates these settings
  }
  await waitIdle(page, info);
}
