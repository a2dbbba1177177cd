// The `accelerate launch` command that trains δ (or η) at scale with diffusers' own Diffusion-DPO script on a dataset
// from the export (dataset-export.ts), with the settings of the released NPO weights or of a run in the page.
// Flag names are the script's (diffusers v0.29.2 examples/research_projects/diffusion_dpo/train_diffusion_dpo.py and
// train_diffusion_dpo_sdxl.py, parse_args); the released settings are G-U-N/Diffusion-NPO's DPO-DPO-NPO/run_sd15.sh
// and run_sdxl.sh (their weights are the 2000-step checkpoints: sd15_beta500_2kiter, sdxl_beta2k_2kiter).
// Shown in the README ("Scale out with diffusers and accelerate", checked against this file by a test) and in the page.
import type { TrainOptions } from '../worker/protocol.ts';

/** The one split the exported dataset has (dataset-export.ts writes it; the script's own default is `validation`). */
export const DATASET_SPLIT = 'train';

export type ScriptFamily = 'sd15' | 'sdxl';

/** The script's flags we set, by their names in its argparse (values as the command writes them). */
export interface DpoScriptSettings {
  resolution: number;
  train_batch_size: number;
  gradient_accumulation_steps: number;
  rank: number;
  /** The script parses it with type=int: a fractional β is refused by argparse, so it is rounded here. */
  beta_dpo: number;
  learning_rate: number;
  lr_scheduler: string;
  lr_warmup_steps: number;
  max_train_steps: number;
  seed: number;
  /** Without it the script mirrors every pair with probability ½ (its default); the page's default is no flip. */
  no_hflip: boolean;
  mixed_precision?: 'fp16' | 'bf16';
  gradient_checkpointing?: boolean;
  use_8bit_adam?: boolean;
}

export const SCRIPT_PATHS: Record<ScriptFamily, string> = {
  sd15: 'diffusers/examples/research_projects/diffusion_dpo/train_diffusion_dpo.py',
  sdxl: 'diffusers/examples/research_projects/diffusion_dpo/train_diffusion_dpo_sdxl.py',
};

export const BASE_MODELS: Record<ScriptFamily, string> = {
  sd15: 'stable-diffusion-v1-5/stable-diffusion-v1-5',
  sdxl: 'stabilityai/stable-diffusion-xl-base-1.0',
};

/** SDXL's VAE overflows in fp16; the NPO run used this fp16-safe one (--pretrained_vae_model_name_or_path). */
export const SDXL_FP16_VAE = 'madebyollin/sdxl-vae-fp16-fix';

/**
 * The released NPO weights' settings. Batch sizes are per GPU as in run_sd15.sh / run_sdxl.sh (64; 30 × 2 accumulated);
 * the total is that times the number of processes, which those scripts leave to the machine's accelerate config.
 */
export const RELEASED_NPO_SETTINGS: Record<ScriptFamily, DpoScriptSettings> = {
  sd15: {
    resolution: 512, train_batch_size: 64, gradient_accumulation_steps: 1, rank: 8, beta_dpo: 500, learning_rate: 5e-6,
    lr_scheduler: 'constant', lr_warmup_steps: 0, max_train_steps: 2000, seed: 0, no_hflip: false,
    mixed_precision: 'fp16', gradient_checkpointing: true, use_8bit_adam: true,
  },
  sdxl: {
    resolution: 1024, train_batch_size: 30, gradient_accumulation_steps: 2, rank: 8, beta_dpo: 2000, learning_rate: 5e-6,
    lr_scheduler: 'constant', lr_warmup_steps: 0, max_train_steps: 2000, seed: 0, no_hflip: false,
    mixed_precision: 'fp16', gradient_checkpointing: true, use_8bit_adam: true,
  },
};

/** A run in the page (the training panel's options) as the script's flags; `resolution` is the training size used. */
export function settingsFromPageRun(options: TrainOptions, resolution: number): DpoScriptSettings {
  return {
    resolution, train_batch_size: options.batch, gradient_accumulation_steps: options.gradAccum ?? 1, rank: options.rank,
    beta_dpo: Math.round(options.beta), learning_rate: options.lr, lr_scheduler: options.lrSchedule ?? 'constant',
    lr_warmup_steps: options.lrWarmup ?? 0, max_train_steps: options.steps, seed: options.seed, no_hflip: !options.hflip,
  };
}

export interface AccelerateCommandOptions {
  family: ScriptFamily;
  /** The exported dataset's folder (what --dataset_name points at). */
  datasetDir: string;
  numProcesses: number;
  settings: DpoScriptSettings;
  outputDir?: string;
  baseModel?: string;
}

/** `accelerate launch …` as a shell command, one flag per line. */
export function accelerateCommand(options: AccelerateCommandOptions): string {
  const { family, settings: s, numProcesses } = options;
  if (!Number.isSafeInteger(numProcesses) || numProcesses < 1) throw new RangeError(`numProcesses must be a positive integer, got ${numProcesses}`);
  const launch = numProcesses > 1 ? `accelerate launch --multi_gpu --num_processes ${numProcesses}` : 'accelerate launch --num_processes 1';
  const flags: string[] = [
    `--pretrained_model_name_or_path ${options.baseModel ?? BASE_MODELS[family]}`,
    ...(family === 'sdxl' ? [`--pretrained_vae_model_name_or_path ${SDXL_FP16_VAE}`] : []),
    `--dataset_name ${shellWord(options.datasetDir)}`,
    `--dataset_split_name ${DATASET_SPLIT}`,
    `--output_dir ${shellWord(options.outputDir ?? (family === 'sdxl' ? 'npo-sdxl-lora' : 'npo-sd15-lora'))}`,
    `--resolution ${s.resolution}`,
    `--train_batch_size ${s.train_batch_size}`,
    `--gradient_accumulation_steps ${s.gradient_accumulation_steps}`,
    `--rank ${s.rank}`,
    `--beta_dpo ${Math.round(s.beta_dpo)}`,
    `--learning_rate ${flagNumber(s.learning_rate)}`,
    `--lr_scheduler ${s.lr_scheduler}`,
    `--lr_warmup_steps ${s.lr_warmup_steps}`,
    `--max_train_steps ${s.max_train_steps}`,
    `--seed ${s.seed}`,
    ...(s.mixed_precision ? [`--mixed_precision ${s.mixed_precision}`] : []),
    ...(s.gradient_checkpointing ? ['--gradient_checkpointing'] : []),
    ...(s.use_8bit_adam ? ['--use_8bit_adam'] : []),
    ...(s.no_hflip ? ['--no_hflip'] : []),
  ];
  return [`${launch} ${SCRIPT_PATHS[family]}`, ...flags.map((f) => `  ${f}`)].join(' \\\n');
}

/** What the script's defaults get wrong for these datasets, and what the commands above do about it. */
export const SCRIPT_PITFALLS: readonly string[] = [
  "--dataset_split_name defaults to 'validation': our datasets have one split, 'train', so the flag is always passed "
    + '(the NPO authors\' own run_sd15.sh omits it and so trained on Pick-a-Pic\'s validation split).',
  'Ties are not dropped: preprocess_train swaps a pair only when label_0 == 0, so a tie (0.5) trains as "jpg_0 wins". '
    + 'Our export leaves ties out and says how many in the dataset card.',
  'NPO is the labels reversed (export with --reverse, or NPO ticked in the page); nothing in the script changes.',
  "--beta_dpo is parsed as an integer; the script's default is 2500 (SD1.5) / 5000 (SDXL), not NPO's 500 / 2000.",
  'Without --no_hflip every pair is mirrored with probability ½ (wrong for prompts that say left or right).',
  'The script imports wandb even when it reports to tensorboard: install both (pip install wandb tensorboard).',
  '--train_batch_size is per GPU: the update sees train_batch_size × num_processes × gradient_accumulation_steps pairs.',
];

/** 5e-6 rather than 0.000005 (argparse's float() reads both). */
function flagNumber(n: number): string {
  return n !== 0 && Math.abs(n) < 1e-3 ? n.toExponential() : String(n);
}

/** A path as one shell word (quoted when it holds anything but safe characters). */
function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
