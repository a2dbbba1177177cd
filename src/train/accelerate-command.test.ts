// The `accelerate launch` commands: the README shows exactly what accelerateCommand builds (so the two cannot drift;
// check_diffusers_roundtrip.py parses those README commands with both scripts' own parse_args), and a page run's
// settings become the script's flags.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { accelerateCommand, RELEASED_NPO_SETTINGS, SCRIPT_PITFALLS, settingsFromPageRun } from './accelerate-command.ts';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('accelerate launch commands', () => {
  it("the README's section shows the released NPO settings' commands for SD1.5 and SDXL, and every pitfall", () => {
    for (const family of ['sd15', 'sdxl'] as const) {
      expect(README).toContain(accelerateCommand({ family, datasetDir: './npo-pairs', numProcesses: 8, settings: RELEASED_NPO_SETTINGS[family] }));
    }
    for (const pitfall of SCRIPT_PITFALLS) expect(README).toContain(`- ${pitfall}`);
  });

  it('passes the train split, the released β_dpo, rank 8 and lr 5e-6; one process drops --multi_gpu', () => {
    const sd15 = accelerateCommand({ family: 'sd15', datasetDir: 'my pairs', numProcesses: 1, settings: RELEASED_NPO_SETTINGS.sd15 });
    expect(sd15.split(' \\\n')[0]).toBe('accelerate launch --num_processes 1 diffusers/examples/research_projects/diffusion_dpo/train_diffusion_dpo.py');
    for (const flag of ['--dataset_split_name train', '--beta_dpo 500', '--rank 8', '--learning_rate 5e-6', "--dataset_name 'my pairs'"]) expect(sd15).toContain(flag);
    const sdxl = accelerateCommand({ family: 'sdxl', datasetDir: 'd', numProcesses: 4, settings: RELEASED_NPO_SETTINGS.sdxl });
    expect(sdxl).toContain('accelerate launch --multi_gpu --num_processes 4');
    expect(sdxl).toContain('--beta_dpo 2000');
    expect(sdxl).toContain('--pretrained_vae_model_name_or_path madebyollin/sdxl-vae-fp16-fix');
  });

  it("turns a page run into the script's flags: β rounded (argparse int), no flip unless asked, accumulation and schedule", () => {
    const settings = settingsFromPageRun({ reverse: true, rank: 4, steps: 40, beta: 512.4, lr: 1e-3, batch: 4, seed: 3, gradAccum: 2, lrSchedule: 'cosine', lrWarmup: 5 }, 64);
    const command = accelerateCommand({ family: 'sd15', datasetDir: 'd', numProcesses: 2, settings });
    for (const flag of ['--beta_dpo 512', '--rank 4', '--max_train_steps 40', '--train_batch_size 4', '--gradient_accumulation_steps 2',
      '--lr_scheduler cosine', '--lr_warmup_steps 5', '--learning_rate 0.001', '--resolution 64', '--seed 3', '--no_hflip']) expect(command).toContain(flag);
    expect(accelerateCommand({ family: 'sd15', datasetDir: 'd', numProcesses: 2, settings: { ...settings, no_hflip: false } })).not.toContain('--no_hflip');
  });
});
