// Scheduler registry: `createScheduler(name, config)` with diffusers' own `scheduler_config.json` keys, diffusers'
// defaults for keys left out, and diffusers' numerics (each scheduler's tests port diffusers' full-loop references).
//
//   const s = createScheduler('dpm++2m', await (await fetch('scheduler/scheduler_config.json')).json());
//   s.setTimesteps(25);
//   let x = scaled(createGenerator(seed).randn(n), s.initNoiseSigma);
//   for (const t of s.timesteps) x = s.step(unet(s.scaleModelInput(x, t), t), t, x, { generator }).prevSample;
//
// Names and what they are in diffusers / A1111 terms:
//   ddim             DDIMScheduler (eta via step options)
//   pndm             PNDMScheduler (PLMS with skip_prk_steps, as SD 1.x ships)
//   euler            EulerDiscreteScheduler ("Euler"; use_karras_sigmas for "Euler Karras")
//   euler-ancestral  EulerAncestralDiscreteScheduler ("Euler a")
//   heun             HeunDiscreteScheduler
//   dpm++2m          DPMSolverMultistepScheduler, algorithm_type dpmsolver++ ("DPM++ 2M"; orders 1–3)
//   dpm++2m-karras   the same with use_karras_sigmas ("DPM++ 2M Karras")
//   dpm++2m-sde      DPMSolverMultistepScheduler, algorithm_type sde-dpmsolver++ ("DPM++ 2M SDE")
//   dpm++2m-sde-karras  the same with use_karras_sigmas
//   lcm              LCMScheduler (for LCM-distilled models / LCM-LoRA)
//   unipc            UniPCMultistepScheduler (bh1/bh2, orders 1–4, predictor–corrector)

import { createDdim } from './ddim.ts';
import { createDpmMultistep } from './dpm-multistep.ts';
import { createEuler, createEulerAncestral, createHeun } from './euler.ts';
import { createLcm } from './lcm.ts';
import { createPndm } from './pndm.ts';
import { createUniPc } from './unipc.ts';
import type { Scheduler, SchedulerConfig } from './types.ts';

export { parseSchedulerConfig } from './config.ts';
export type { Scheduler, SchedulerConfig, StepOptions, StepResult, BetaSchedule, PredictionType, TimestepSpacing } from './types.ts';

const FACTORIES = {
  ddim: (c: SchedulerConfig) => createDdim(c),
  pndm: (c: SchedulerConfig) => createPndm(c),
  euler: (c: SchedulerConfig) => createEuler(c),
  'euler-ancestral': (c: SchedulerConfig) => createEulerAncestral(c),
  heun: (c: SchedulerConfig) => createHeun(c),
  'dpm++2m': (c: SchedulerConfig) => createDpmMultistep({ ...c, algorithm_type: 'dpmsolver++' }, 'dpm++2m'),
  'dpm++2m-karras': (c: SchedulerConfig) =>
    createDpmMultistep({ ...c, algorithm_type: 'dpmsolver++', use_karras_sigmas: true }, 'dpm++2m-karras'),
  'dpm++2m-sde': (c: SchedulerConfig) => createDpmMultistep({ ...c, algorithm_type: 'sde-dpmsolver++' }, 'dpm++2m-sde'),
  'dpm++2m-sde-karras': (c: SchedulerConfig) =>
    createDpmMultistep({ ...c, algorithm_type: 'sde-dpmsolver++', use_karras_sigmas: true }, 'dpm++2m-sde-karras'),
  lcm: (c: SchedulerConfig) => createLcm(c),
  unipc: (c: SchedulerConfig) => createUniPc(c),
} satisfies Record<string, (c: SchedulerConfig) => Scheduler>;

export type SchedulerName = keyof typeof FACTORIES;

export const SCHEDULER_NAMES = Object.keys(FACTORIES) as SchedulerName[];

/** Human labels for a picker (A1111/ComfyUI wording where one exists). */
export const SCHEDULER_LABELS: Record<SchedulerName, string> = {
  ddim: 'DDIM',
  pndm: 'PNDM / PLMS',
  euler: 'Euler',
  'euler-ancestral': 'Euler a',
  heun: 'Heun',
  'dpm++2m': 'DPM++ 2M',
  'dpm++2m-karras': 'DPM++ 2M Karras',
  'dpm++2m-sde': 'DPM++ 2M SDE',
  'dpm++2m-sde-karras': 'DPM++ 2M SDE Karras',
  lcm: 'LCM',
  unipc: 'UniPC',
};

/** Usual step counts (what diffusers' pipelines and A1111 users typically run) for a picker's default. */
export const DEFAULT_STEPS: Record<SchedulerName, number> = {
  ddim: 50, pndm: 50, euler: 30, 'euler-ancestral': 30, heun: 20, 'dpm++2m': 25, 'dpm++2m-karras': 25,
  'dpm++2m-sde': 30, 'dpm++2m-sde-karras': 30, lcm: 4, unipc: 20,
};

/** Schedulers that only give clean images from a consistency-distilled model (LCM / LCM-LoRA). */
export const NEEDS_DISTILLED_MODEL: ReadonlySet<SchedulerName> = new Set(['lcm']);

/** Whether `step` draws noise, i.e. needs `options.generator` (LCM only between steps, DDIM only with η > 0). */
export const STOCHASTIC: ReadonlySet<SchedulerName> = new Set(['euler-ancestral', 'dpm++2m-sde', 'dpm++2m-sde-karras', 'lcm']);

export function isSchedulerName(name: string): name is SchedulerName {
  return Object.hasOwn(FACTORIES, name);
}

export function createScheduler(name: SchedulerName | string, config: SchedulerConfig = {}): Scheduler {
  if (!isSchedulerName(name)) throw new Error(`unknown scheduler "${name}"; choose one of ${SCHEDULER_NAMES.join(', ')}`);
  if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new Error('scheduler config must be an object');
  return FACTORIES[name](config);
}

const CLASS_NAMES: Record<string, SchedulerName> = {
  DDIMScheduler: 'ddim',
  PNDMScheduler: 'pndm',
  EulerDiscreteScheduler: 'euler',
  EulerAncestralDiscreteScheduler: 'euler-ancestral',
  HeunDiscreteScheduler: 'heun',
  DPMSolverMultistepScheduler: 'dpm++2m',
  LCMScheduler: 'lcm',
  UniPCMultistepScheduler: 'unipc',
};

/**
 * The scheduler a model's `scheduler_config.json` asks for (its `_class_name`), or undefined when we have no
 * equivalent. A DPMSolverMultistep config picks the SDE and Karras variants from its own keys.
 */
export function schedulerNameForConfig(config: SchedulerConfig): SchedulerName | undefined {
  const cls = typeof config._class_name === 'string' ? config._class_name : '';
  const name = CLASS_NAMES[cls];
  if (name !== 'dpm++2m') return name;
  const sde = config.algorithm_type === 'sde-dpmsolver++';
  const karras = config.use_karras_sigmas === true;
  return sde ? (karras ? 'dpm++2m-sde-karras' : 'dpm++2m-sde') : karras ? 'dpm++2m-karras' : 'dpm++2m';
}
