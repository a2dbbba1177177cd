// "Which seed is better?": the image with NPO (or without) at the current settings and two seeds, side by side, each
// with a pick button; a pick becomes a preference pair in the training panel's set (seed-pair-store.ts).
import { PixelCanvas } from './PixelCanvas.tsx';
import { useSeedPair } from './seed-pair-store.ts';
import type { ImageKind } from '../worker/protocol.ts';

export function SeedPairPanel({ disabled }: { disabled: boolean }) {
  const s = useSeedPair();
  const pair = s.pair;
  return (
    <section className="seeds" aria-labelledby="seeds-title">
      <h2 id="seeds-title">Pick between two seeds</h2>
      <div className="row">
        <label><span>image</span>
          <select data-testid="seeds-kind" value={s.kind} onChange={(e) => s.set({ kind: e.target.value as ImageKind })}>
            <option value="npo">with NPO</option><option value="baseline">without NPO</option>
          </select></label>
        <label><span>second seed</span>
          <input type="number" data-testid="seeds-second" min={0} max={0xffffffff} placeholder="seed + 1" value={s.secondSeed ?? ''}
            onChange={(e) => s.set({ secondSeed: e.target.value === '' ? undefined : Math.trunc(Number(e.target.value)) })} /></label>
        <button type="button" data-testid="seeds-run" disabled={disabled || s.status === 'running'} onClick={() => void s.run()}>Generate both seeds</button>
        <button type="button" data-testid="seeds-cancel" disabled={s.status !== 'running'} onClick={s.cancel}>Cancel</button>
      </div>
      <p className="status" data-testid="seeds-status" data-state={s.status}>{s.message ?? (pair ? 'pick the better one: it joins your pairs' : '')}</p>
      {pair && (
        <div className="pair">
          {pair.images.map((image, i) => (
            <figure key={pair.seeds[i]}>
              <PixelCanvas data-testid={`seeds-image-${i === 0 ? 'a' : 'b'}`} data-seed={pair.seeds[i]} image={image} role="img"
                aria-label={`${pair.kind === 'npo' ? 'with' : 'without'} NPO, seed ${pair.seeds[i]}`} />
              <figcaption>seed {pair.seeds[i]}</figcaption>
              <button type="button" data-testid={`seeds-pick-${i === 0 ? 'a' : 'b'}`} aria-pressed={s.picked === i} onClick={() => s.pick(i as 0 | 1)}>
                {s.picked === i ? '✓ picked' : 'Better'}</button>
            </figure>
          ))}
        </div>
      )}
    </section>
  );
}
