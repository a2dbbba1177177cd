// The α×β sweep panel (paper Figure 10): choose the two axes (α, β or ω) and their values, generate the grid for the
// current prompt and seed with cells streaming in, cancel any time. Each cell is one NPO image with its reward; the
// cell backgrounds form a heat map of the reward and the best cell is named and outlined.
import { bestIndex, heatColour, type SweepAxis } from '../share/sweep.ts';
import { describeScores } from '../share/score.ts';
import { PixelCanvas } from './PixelCanvas.tsx';
import { useSweep } from './sweep-store.ts';
import { CLIP_SCORE_MEANING, useClipScores } from './ClipScore.tsx';

const AXIS_LABELS: Record<SweepAxis, string> = { alpha: 'α', beta: 'β', omega: 'ω' };

export function SweepPanel({ disabled }: { disabled: boolean }) {
  const s = useSweep();
  // Real models: the CLIP score, when a CLIP folder is loaded (the embedded model's reward otherwise).
  const clip = useClipScores([...s.cells.map((c) => c.image && { image: c.image, prompt: c.params.prompt }), s.baseline && { image: s.baseline.image, prompt: s.cells[0]?.params.prompt ?? '' }]);
  const totals = s.cells.map((c, i) => (c.score?.ok ? c.score.scores.total : clip[i]));
  const baselineTotal = s.baseline?.score.ok ? s.baseline.score.scores.total : clip[s.cells.length];
  const best = bestIndex(totals);
  const scored = totals.filter((t): t is number => t !== undefined);
  const lo = Math.min(...scored), hi = Math.max(...scored);
  const axisSelect = (which: 'rowAxis' | 'columnAxis', label: string) => (
    <label><span>{label}</span>
      <select data-testid={`sweep-${which === 'rowAxis' ? 'rows' : 'columns'}-axis`} value={s[which]} onChange={(e) => s.set({ [which]: e.target.value as SweepAxis })}>
        {(['alpha', 'beta', 'omega'] as const).map((a) => <option key={a} value={a}>{AXIS_LABELS[a]}</option>)}
      </select></label>
  );
  const valuesField = (which: 'rowText' | 'columnText', label: string) => (
    <label><span>{label}</span>
      <input data-testid={`sweep-${which === 'rowText' ? 'rows' : 'columns'}`} value={s[which]} onChange={(e) => s.set({ [which]: e.target.value })} /></label>
  );
  const bestCell = best >= 0 ? s.cells[best] : undefined;
  return (
    <section className="sweep" aria-labelledby="sweep-title" data-tour="sweep">
      <h2 id="sweep-title">α×β sweep</h2>
      <div className="row">
        {axisSelect('rowAxis', 'rows')}{valuesField('rowText', 'row values')}
        {axisSelect('columnAxis', 'columns')}{valuesField('columnText', 'column values')}
        <button type="button" data-testid="sweep-run" disabled={disabled || s.status === 'running'} onClick={() => void s.run()}>Run sweep</button>
        <button type="button" data-testid="sweep-cancel" disabled={s.status !== 'running'} onClick={s.cancel}>Cancel</button>
      </div>
      {s.error && <div role="alert" className="error" data-testid="sweep-error">{s.error}</div>}
      <p className="status" data-testid="sweep-status" data-state={s.status}>
        {s.status === 'running' ? `cell ${s.cells.filter((c) => c.image).length + 1}/${s.cells.length}` : s.message ?? ''}
      </p>
      {s.cells.length > 0 && (
        <div className="sweep-grid" style={{ gridTemplateColumns: `auto repeat(${s.columns.length}, minmax(0, 1fr))` }}>
          <div className="corner">{AXIS_LABELS[s.rowAxis]} \ {AXIS_LABELS[s.columnAxis]}</div>
          {s.columns.map((c) => <div key={`c${c}`} className="axis">{c}</div>)}
          {s.rows.map((r, row) => [
            <div key={`r${r}`} className="axis">{r}</div>,
            ...s.cells.filter((c) => c.row === row).map((c) => {
              const i = s.cells.indexOf(c);
              const total = totals[i];
              return (
                <figure key={`${row}:${c.column}`} data-testid="sweep-cell" className={i === best ? 'cell best' : 'cell'}
                  data-alpha={c.params.alpha} data-beta={c.params.beta} data-omega={c.params.omega} data-score={total}
                  style={total !== undefined ? { background: heatColour(total, lo, hi) } : undefined}
                  title={c.score?.ok ? describeScores(c.score.scores) : total !== undefined ? CLIP_SCORE_MEANING : c.score?.reason}>
                  <PixelCanvas image={c.image} width={32} height={32} aria-label={`α ${c.params.alpha}, β ${c.params.beta}, ω ${c.params.omega}`} role="img" />
                  <figcaption>{total !== undefined ? total.toFixed(3) : c.image ? '—' : '…'}</figcaption>
                </figure>
              );
            }),
          ])}
        </div>
      )}
      {s.baseline && (
        <p className="sweep-baseline">
          <PixelCanvas image={s.baseline.image} data-testid="sweep-baseline" width={32} height={32} role="img" aria-label="without NPO" />
          without NPO (ω {s.baseline.omega}): {baselineTotal !== undefined ? baselineTotal.toFixed(3) : '—'}
        </p>
      )}
      {bestCell && (
        <p className="status" data-testid="sweep-best" data-alpha={bestCell.params.alpha} data-beta={bestCell.params.beta} data-omega={bestCell.params.omega} data-score={totals[best]}>
          best: α {bestCell.params.alpha}, β {bestCell.params.beta}, ω {bestCell.params.omega} · reward {totals[best]!.toFixed(3)}
        </p>
      )}
    </section>
  );
}
