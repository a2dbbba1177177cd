// Learning-rate schedules of diffusers' training scripts (`--lr_scheduler`, `--lr_warmup_steps`;
// diffusers.optimization.get_scheduler, the same lambdas as transformers'): the factor on the base lr for optimizer
// step s = 0, 1, … (torch's LambdaLR evaluates its lambda at the number of steps taken so far, so the first update
// uses s = 0: with warm-up it is a zero update, as in the scripts). train_diffusion_dpo.py defaults to
// constant_with_warmup with 500 warm-up steps; here the default is constant, no warm-up (the embedded model's short runs).
export const LR_SCHEDULES = ['constant', 'constant_with_warmup', 'linear', 'cosine'] as const;
export type LrSchedule = (typeof LR_SCHEDULES)[number];

/** The lr factor at optimizer step `step` (0-based) of `total`, after `warmup` linear warm-up steps. */
export function lrFactor(schedule: LrSchedule, step: number, warmup: number, total: number): number {
  if (schedule === 'constant') return 1;
  if (step < warmup) return step / Math.max(1, warmup);
  if (schedule === 'constant_with_warmup') return 1;
  const progress = (step - warmup) / Math.max(1, total - warmup);
  if (schedule === 'linear') return Math.max(0, (total - step) / Math.max(1, total - warmup));
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress))); // cosine, num_cycles 0.5: half a cosine down to 0
}

/** Checks a schedule's settings, naming the bad one. */
export function checkLrSchedule(schedule: string, warmup: number): asserts schedule is LrSchedule {
  if (!(LR_SCHEDULES as readonly string[]).includes(schedule)) throw new Error(`lr schedule must be one of ${LR_SCHEDULES.join(', ')}, got ${schedule}`);
  if (!Number.isSafeInteger(warmup) || warmup < 0) throw new Error(`lr warm-up steps must be a whole number ≥ 0, got ${warmup}`);
}
