// The trained LoRA's effect on the current prompt (issue 11, item 6): made automatically when training ends, the image
// the LoRA changes (δ: the NPO image, η: the baseline) with the η/δ in use ("before") and with the trained one
// ("after"), same prompt, seed and settings. Nothing is swapped for good until the person presses "Use as δ".
import { PixelCanvas } from './PixelCanvas.tsx';
import type { LoraEffect } from './training-store.ts';

export function LoraEffectView({ effect }: { effect: LoraEffect }) {
  const { result, role, params, progress } = effect;
  const name = role === 'delta' ? 'δ' : 'η';
  if (!result) {
    return <p className="status" data-testid="train-effect-progress">previewing the trained {name} on the current prompt: step {progress.step}/{progress.total}</p>;
  }
  const image = (rgba: Uint8ClampedArray) => ({ rgba, width: result.width, height: result.height });
  const what = `“${params.prompt || '(empty prompt)'}”, seed ${result.seed}, ${params.steps} steps, ω ${params.omega}, α ${params.alpha}, β ${params.beta}`;
  return (
    <figure className="effect" data-testid="train-effect" data-seed={result.seed} data-kind={result.kind}>
      <div className="pair">
        <div><PixelCanvas data-testid="train-effect-before" image={image(result.before)} role="img" aria-label={`before: the ${name} in use`} /><span>before</span></div>
        <div><PixelCanvas data-testid="train-effect-after" image={image(result.after)} role="img" aria-label={`after: the trained ${name}`} /><span>after</span></div>
      </div>
      <figcaption>The trained {name} on {what} ({result.kind === 'npo' ? 'with NPO' : 'without NPO'}).</figcaption>
    </figure>
  );
}
