// One image per scheduler at its usual step count (diffusers/A1111 defaults, DEFAULT_STEPS), from the committed
// embedded model, same prompt and seed, scored by the reward: a quick look that every scheduler gives a clean image.
// Usage: npm run schedulers:grid [-- --model models --png docs/schedulers.png --prompts 4]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_STEPS, type SchedulerName } from '../diffusion/schedulers/index.ts';
import { scoreImage } from '../reward/index.ts';
import { encodePng, heldOutCaptions, imageGrid } from '../world/index.ts';
import { engineWith, readModelDirectory } from '../eval/sample-model.ts';

const { values } = parseArgs({ options: { model: { type: 'string', default: 'models' }, png: { type: 'string', default: 'docs/schedulers.png' }, prompts: { type: 'string', default: '4' } } });
const model = readModelDirectory(values.model!);
const engine = await engineWith(model, {});
const prompts = heldOutCaptions(Number(values.prompts));
const images: Float32Array[] = [];
console.log('| scheduler | steps | mean total | mean detail | mean fidelity |\n|---|---|---|---|---|');
for (const scheduler of engine.info.schedulers as SchedulerName[]) {
  const scores: ReturnType<typeof scoreImage>[] = [];
  for (const prompt of prompts) {
    const params = { ...model.manifest.defaults, prompt, negativePrompt: '', seed: 7, steps: DEFAULT_STEPS[scheduler], scheduler };
    const image = (await engine.generate(params, ['baseline'], {})).images.get('baseline')!;
    images.push(image);
    scores.push(scoreImage(image, prompt));
  }
  const mean = (k: 'total' | 'detail' | 'fidelity') => (scores.reduce((a, s) => a + s[k], 0) / scores.length).toFixed(3);
  console.log(`| ${scheduler} | ${DEFAULT_STEPS[scheduler]} | ${mean('total')} | ${mean('detail')} | ${mean('fidelity')} |`);
}
const grid = imageGrid(images, model.manifest.unet.config.sampleSize, prompts.length, 4);
writeFileSync(values.png!, encodePng(grid.image, grid.width, grid.height));
console.log(`\nwrote ${values.png}: rows = schedulers (${engine.info.schedulers.join(', ')}), columns = held-out prompts:\n${prompts.map((p) => `  ${p}`).join('\n')}`);
await engine.release();
