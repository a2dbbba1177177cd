// The training chart's geometry (pure, so it is tested without a DOM): loss and implicit accuracy per step as SVG
// polyline points in a width × height box, and the run's time per step and ETA.
export interface ChartStep { step: number; loss: number; accuracy: number }

export interface ChartGeometry { loss: string; accuracy: string; lossRange: [number, number]; points: { x: number; lossY: number; accuracyY: number }[] }

/** x spans steps 1…totalSteps; loss spans its own min…max (ln 2 kept in view), accuracy 0…1; y grows downward. */
export function chartGeometry(history: readonly ChartStep[], totalSteps: number, width: number, height: number, pad = 4): ChartGeometry {
  const losses = history.map((h) => h.loss).filter(Number.isFinite);
  const lo = Math.min(Math.LN2, ...losses), hi = Math.max(Math.LN2, ...losses);
  const span = hi - lo || 1;
  const x = (step: number) => pad + ((step - 1) / Math.max(1, totalSteps - 1)) * (width - 2 * pad);
  const y = (t: number) => pad + (1 - t) * (height - 2 * pad);
  const points = history.map((h) => ({ x: x(h.step), lossY: y((h.loss - lo) / span), accuracyY: y(Math.min(1, Math.max(0, h.accuracy))) }));
  const line = (key: 'lossY' | 'accuracyY') => points.map((p) => `${p.x.toFixed(1)},${p[key].toFixed(1)}`).join(' ');
  return { loss: line('lossY'), accuracy: line('accuracyY'), lossRange: [lo, hi], points };
}

/** Seconds per step and seconds left, from the trainer's running rate (steps per second since the first step began). */
export function pace(stepsPerSecond: number, done: number, total: number): { secondsPerStep: number; etaSeconds: number } | undefined {
  if (!(stepsPerSecond > 0) || !Number.isFinite(stepsPerSecond)) return undefined;
  const secondsPerStep = 1 / stepsPerSecond;
  return { secondsPerStep, etaSeconds: Math.max(0, total - done) * secondsPerStep };
}
