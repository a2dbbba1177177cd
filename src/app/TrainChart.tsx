// The live training chart (SVG): loss (blue) and implicit accuracy (orange, 0–100 %) per step, with time per step and
// the ETA. Geometry comes from src/share/chart.ts.
import type { TrainStep } from '../worker/protocol.ts';
import { chartGeometry, pace } from '../share/chart.ts';

const W = 300, H = 120;

export function TrainChart({ history, steps }: { history: TrainStep[]; steps: number }) {
  const total = history.at(-1)?.steps ?? steps;
  const g = chartGeometry(history, total, W, H);
  const last = history.at(-1);
  const p = last && pace(last.stepsPerSecond, last.step, last.steps);
  return (
    <figure className="chart">
      <svg data-testid="train-chart" data-points={history.length} viewBox={`0 0 ${W} ${H}`} width={W} height={H} role="img"
        aria-label={last ? `training chart: step ${last.step} of ${last.steps}, loss ${last.loss.toFixed(4)}, implicit accuracy ${(last.accuracy * 100).toFixed(0)} %` : 'training chart: no steps yet'}>
        <rect x={0} y={0} width={W} height={H} fill="#fff" stroke="#ccc" />
        <line x1={0} x2={W} y1={H / 2} y2={H / 2} stroke="#eee" />
        <polyline className="loss" points={g.loss} fill="none" stroke="#2b59c3" strokeWidth={1.5} />
        <polyline className="accuracy" points={g.accuracy} fill="none" stroke="#e07b00" strokeWidth={1.5} strokeDasharray="4 2" />
        {g.points.map((pt, i) => <circle key={i} className="loss-point" cx={pt.x} cy={pt.lossY} r={history.length > 40 ? 0 : 2} fill="#2b59c3" />)}
      </svg>
      <figcaption>
        <span className="key loss">loss {g.lossRange[0].toFixed(3)}–{g.lossRange[1].toFixed(3)}</span>{' '}
        <span className="key accuracy">implicit accuracy 0–100 %</span>
        {p && <span data-testid="train-pace"> · {p.secondsPerStep.toFixed(2)} s/step · ETA {Math.ceil(p.etaSeconds)} s</span>}
      </figcaption>
    </figure>
  );
}
