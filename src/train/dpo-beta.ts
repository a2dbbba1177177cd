// β_dpo by model family, shared by the trainer (train-lora.ts), the CLI and the page's training panel:
//   - defaults: the released NPO δ's β_dpo (DESIGN §2): SD1.5 `sd15_beta500_2kiter`, SDXL `sdxl_beta2k_2kiter`; the
//     embedded model's trainer keeps diffusers' SD1.5 default 2500;
//   - scale: what the DPO graph's β input is per unit of β_dpo. The SD1.5 scripts (diffusers train_diffusion_dpo.py,
//     Diffusion-NPO train_sd15.py) take −logsigmoid(β_dpo·(ref_diff − model_diff)); the SDXL ones
//     (train_diffusion_dpo_sdxl.py, Diffusion-NPO train_sdxl.py) −logsigmoid(−0.5·β_dpo·(model_diff − ref_diff)).
export type ModelKind = 'embedded' | 'sd15' | 'sdxl';

export const RELEASED_NPO_BETA = { sd15: 500, sdxl: 2000 } as const;

export function defaultBeta(kind: ModelKind | undefined): number {
  return kind === 'sdxl' || kind === 'sd15' ? RELEASED_NPO_BETA[kind] : 2500;
}

export function dpoBetaScale(kind: ModelKind | undefined): number {
  return kind === 'sdxl' ? 0.5 : 1;
}
