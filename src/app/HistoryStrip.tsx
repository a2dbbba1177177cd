// The history strip: one thumbnail per generation (newest first); click restores its settings and images, the star
// keeps it past the bounds and past "clear". Entries storage refused are kept for the session, dashed (data-saved).
import { PixelCanvas } from './PixelCanvas.tsx';
import { useHistory } from './history-store.ts';
import { etaOn } from './store.ts';

export function HistoryStrip() {
  const h = useHistory();
  return (
    <section className="history" aria-labelledby="history-title">
      <h2 id="history-title">History <small>({h.entries.length})</small></h2>
      <button type="button" data-testid="history-clear" onClick={() => void h.clear()} disabled={!h.entries.some((e) => !e.starred)}>Clear (keeps starred)</button>
      {h.error && <p className="notice" data-testid="history-error" role="status">{h.error}</p>}
      <ol className="strip">
        {h.entries.map((e) => (
          <li key={e.id} data-testid="history-item" data-id={e.id} data-seed={e.params.seed} data-starred={e.starred} data-saved={!e.unsaved}
            className={[e.starred && 'starred', e.unsaved && 'unsaved'].filter(Boolean).join(' ') || undefined}>
            <button type="button" className="thumb" onClick={() => void h.restore(e)}
              title={`${e.params.prompt || '(empty prompt)'} · seed ${e.params.seed} · ${e.params.steps} steps · ω ${e.params.omega} · α ${e.params.alpha} · β ${e.params.beta}${etaOn({ loraNames: e.loras }) ? '' : ' · η off'}`}
              aria-label={`restore: ${e.params.prompt || 'empty prompt'}, seed ${e.params.seed}, α ${e.params.alpha}, β ${e.params.beta}`}>
              <PixelCanvas image={{ rgba: e.thumb.baseline, width: e.thumb.width, height: e.thumb.height }} />
              <PixelCanvas image={{ rgba: e.thumb.npo, width: e.thumb.width, height: e.thumb.height }} />
            </button>
            <button type="button" className="star" data-testid="history-star" aria-pressed={e.starred} aria-label={e.starred ? 'unstar' : 'star (keep)'}
              onClick={() => void h.star(e)}>{e.starred ? '★' : '☆'}</button>
          </li>
        ))}
      </ol>
    </section>
  );
}
