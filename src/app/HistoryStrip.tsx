// The history strip: one thumbnail per generation (newest first); click restores its settings and images, the star
// keeps it past the bound and past "clear".
import { PixelCanvas } from './PixelCanvas.tsx';
import { useHistory } from './history-store.ts';

export function HistoryStrip() {
  const h = useHistory();
  return (
    <section className="history" aria-labelledby="history-title">
      <h2 id="history-title">History <small>({h.entries.length})</small></h2>
      <button type="button" data-testid="history-clear" onClick={() => void h.clear()} disabled={!h.entries.some((e) => !e.starred)}>Clear (keeps starred)</button>
      {h.error && <p className="notice">{h.error}</p>}
      <ol className="strip">
        {h.entries.map((e) => (
          <li key={e.id} data-testid="history-item" data-id={e.id} data-seed={e.params.seed} data-starred={e.starred} className={e.starred ? 'starred' : ''}>
            <button type="button" className="thumb" onClick={() => h.restore(e)}
              title={`${e.params.prompt || '(empty prompt)'} · seed ${e.params.seed} · ${e.params.steps} steps · ω ${e.params.omega} · α ${e.params.alpha} · β ${e.params.beta}`}
              aria-label={`restore: ${e.params.prompt || 'empty prompt'}, seed ${e.params.seed}, α ${e.params.alpha}, β ${e.params.beta}`}>
              <PixelCanvas image={{ rgba: e.baseline, width: e.width, height: e.height }} />
              <PixelCanvas image={{ rgba: e.npo, width: e.width, height: e.height }} />
            </button>
            <button type="button" className="star" data-testid="history-star" aria-pressed={e.starred} aria-label={e.starred ? 'unstar' : 'star (keep)'}
              onClick={() => void h.star(e)}>{e.starred ? '★' : '☆'}</button>
          </li>
        ))}
      </ol>
    </section>
  );
}
