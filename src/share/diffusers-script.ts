// A short Python script that makes the page's pair of images (baseline and NPO) with diffusers and the official
// Diffusion-NPO recipe, and a batch form that splits a prompt list across GPUs with accelerate, for Table-1-sized
// evaluations. "Copy as diffusers script" in the page and `npm run generate -- --emit-python <file>` write it.
//
// The recipe is G-U-N/Diffusion-NPO's gen.py (load_dpo_ours_pipeline): θ_neg is built once and fused,
//   dense η (a DPO UNet): θ_neg = mix_models(θ, θ_dpo, merge_weight = 1 − α) + β·δ   (mix: merge_weight·θ + (1 − merge_weight)·θ_dpo)
//   LoRA η:               θ_neg = θ + α·η + β·δ   (diffusers adapters with set_adapters weights, then fuse_lora)
// θ_pos = θ + η. The baseline is standard CFG with θ_pos on both branches. Generation is diffusers' own
// StableDiffusion(XL)Pipeline with its batched UNet call split: the unconditional half runs θ_neg, the conditional
// half θ_pos (what the official double-UNet pipeline does, without its Euler scale_model_input slip, fixtures/sd15/
// README.md). Same scheduler class and config as the page (the prepared model's scheduler_config.json, which can
// differ from the Hub repository's), the same seed through a torch CPU generator (the initial noise drawn in float32
// on the CPU, as our src/diffusion/noise/torch-cpu.ts reproduces), guidance_scale = ω + 1.
// The embedded model has no diffusers equivalent: only prepared SD1.5/SDXL models get a script.
import type { GenerateParams } from '../worker/protocol.ts';
import type { PreparedManifest, PreparedOffset } from '../model/manifest.ts';
import { BASE_MODELS } from '../train/accelerate-command.ts';

/** A LoRA file and its weight on its branch (diffusers set_adapters adapter weight). */
export interface ScaledLora { path: string; scale: number }

/** η or δ as diffusers loads it: a full UNet folder or Hub id (dense η, a DPO fine-tune) or LoRA files. */
export type DiffusersOffset = { kind: 'unet'; path: string } | { kind: 'loras'; loras: ScaledLora[] };

/** What a prepared model tells diffusers about itself. */
export interface DiffusersModel {
  kind: 'sd15' | 'sdxl';
  name: string;
  /** The scheduler_config.json the page's scheduler was built from (the prepared model's). */
  scheduler: Record<string, unknown>;
  /** The diffusers pipeline θ comes from (a Hub id or a local folder). */
  base: string;
  eta?: DiffusersOffset;
  delta?: DiffusersOffset;
  /** Things the script cannot reproduce exactly (e.g. an η prepare-model compressed by SVD), said in its header. */
  notes: string[];
}

export class DiffusersScriptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DiffusersScriptError';
  }
}

/** diffusers classes and config changes for our scheduler names (src/diffusion/schedulers/index.ts). */
export const DIFFUSERS_SCHEDULERS: Record<string, { className: string; config: Record<string, unknown> }> = {
  ddim: { className: 'DDIMScheduler', config: {} },
  pndm: { className: 'PNDMScheduler', config: {} },
  euler: { className: 'EulerDiscreteScheduler', config: {} },
  'euler-ancestral': { className: 'EulerAncestralDiscreteScheduler', config: {} },
  heun: { className: 'HeunDiscreteScheduler', config: {} },
  'dpm++2m': { className: 'DPMSolverMultistepScheduler', config: { algorithm_type: 'dpmsolver++' } },
  'dpm++2m-karras': { className: 'DPMSolverMultistepScheduler', config: { algorithm_type: 'dpmsolver++', use_karras_sigmas: true } },
  'dpm++2m-sde': { className: 'DPMSolverMultistepScheduler', config: { algorithm_type: 'sde-dpmsolver++' } },
  'dpm++2m-sde-karras': { className: 'DPMSolverMultistepScheduler', config: { algorithm_type: 'sde-dpmsolver++', use_karras_sigmas: true } },
  lcm: { className: 'LCMScheduler', config: {} },
  unipc: { className: 'UniPCMultistepScheduler', config: {} },
};

/** The public DPO-SD1.5 UNet the paper's SD1.5 results use as η (gen.py's unet_id). */
const DPO_SD15_UNET = 'mhdang/dpo-sd1.5-text2image-v1';

/**
 * A prepared model as diffusers sees it. LoRA offsets are the files in the model folder (`modelDir`/file, what the
 * engine reads; '' when the folder's place is not known, as in the page); a dense η is the diffusers UNet folder
 * prepare-model was given (`source.etaUnet`).
 */
export function diffusersModelOf(manifest: PreparedManifest, modelDir: string): DiffusersModel {
  const notes: string[] = [];
  if (!modelDir) notes.push('LoRA files are named as in the prepared model\'s folder: run the script there, or pass --eta-lora / --delta-lora');
  const inDir = (file: string) => (modelDir ? `${modelDir.replace(/\/+$/, '')}/${file}` : file);
  const offset = (o: PreparedOffset | undefined, role: 'eta' | 'delta'): DiffusersOffset | undefined => {
    if (!o) return undefined;
    if (o.kind === 'lora') return { kind: 'loras', loras: [{ path: inDir(o.file), scale: o.scale ?? 1 }] };
    if (o.kind === 'stack') return { kind: 'loras', loras: o.parts.map((p) => ({ path: inDir(p.file), scale: p.scale ?? 1 })) };
    const etaUnet = manifest.source.etaUnet;
    if (role === 'eta' && typeof etaUnet === 'string') return { kind: 'unet', path: etaUnet };
    notes.push(`${role} is a dense offset whose diffusers UNet folder is not recorded; set --eta-unet`);
    return { kind: 'unet', path: manifest.kind === 'sd15' ? DPO_SD15_UNET : '<your DPO UNet folder>' };
  };
  const model: DiffusersModel = {
    kind: manifest.kind, name: manifest.name, scheduler: manifest.scheduler, base: BASE_MODELS[manifest.kind],
    eta: offset(manifest.offsets.eta, 'eta'), delta: offset(manifest.offsets.delta, 'delta'), notes,
  };
  if (manifest.source.etaRank !== undefined) notes.push(`η was compressed by prepare-model to rank ${String(manifest.source.etaRank)} (SVD of the DPO UNet's offset); the script loads that LoRA, as the page does`);
  return model;
}

export interface ScriptRequest {
  model: DiffusersModel;
  params: GenerateParams;
  /** How the script was made, for its header (e.g. "npm run generate -- --model …"). */
  madeBy: string;
}

/** The Python script, as text. */
export function diffusersScript({ model, params, madeBy }: ScriptRequest): string {
  const scheduler = DIFFUSERS_SCHEDULERS[params.scheduler];
  if (!scheduler) throw new DiffusersScriptError(`the scheduler ${JSON.stringify(params.scheduler)} has no diffusers equivalent here (known: ${Object.keys(DIFFUSERS_SCHEDULERS).join(', ')})`);
  const xl = model.kind === 'sdxl';
  // SDXL without a negative prompt: None (zero embeddings with force_zeros_for_empty_prompt), as our engine does.
  const negative = xl && params.negativePrompt === '' && !params.negativePromptGiven ? null : params.negativePrompt;
  const settings = {
    prompt: params.prompt, negative_prompt: negative, seed: params.seed, steps: params.steps, guidance_scale: params.omega + 1,
    alpha: params.alpha, beta: params.beta, width: params.width ?? null, height: params.height ?? null,
  };
  const offsetArgs = (o: DiffusersOffset | undefined) => (o?.kind === 'loras' ? o.loras.map((l) => `${l.path}:${l.scale}`) : []);
  const fields: Record<string, string> = {
    MADE_BY: comment(madeBy), MODEL_NAME: comment(model.name), NOTES: model.notes.map((n) => `\n# Note: ${comment(n)}.`).join(''),
    PIPELINE: xl ? 'StableDiffusionXLPipeline' : 'StableDiffusionPipeline', SETTINGS: py(settings), BASE: py(model.base),
    ETA_UNET: py(model.eta?.kind === 'unet' ? model.eta.path : null), ETA_LORAS: py(offsetArgs(model.eta)), DELTA_LORAS: py(offsetArgs(model.delta)),
    SCHEDULER_CLASS: scheduler.className, SCHEDULER_CONFIG: py({ ...model.scheduler, ...scheduler.config }), SCHEDULER_NAME: comment(params.scheduler),
  };
  // one pass, so that a value holding "@NAME@" (a prompt, a file name) is never substituted again
  return TEMPLATE.replace(/@([A-Z_]+)@/g, (_, key: string) => fields[key]);
}

/** Text for a Python comment line: one line. */
const comment = (text: string) => text.replace(/[\r\n\u2028\u2029]+/g, ' ');

/** A JSON-like value as a Python literal (None/True/False; strings JSON-escaped, which Python reads the same). */
export function py(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'float("nan")';
    if (!Number.isFinite(value)) return value > 0 ? 'float("inf")' : '-float("inf")';
    return String(value);
  }
  if (typeof value === 'string') {
    // the scheduler configs write ±Infinity as strings so that they parse as JSON; diffusers wants the float
    if (value === '-Infinity' || value === 'Infinity') return value === 'Infinity' ? 'float("inf")' : '-float("inf")';
    // ASCII only: \uXXXX, and \UXXXXXXXX past the BMP (Python does not join a JSON surrogate pair into one character)
    return JSON.stringify(value).replace(/[\u007f-\u{10ffff}]/gu, (c) => {
      const code = c.codePointAt(0)!;
      return code > 0xffff ? `\\U${code.toString(16).padStart(8, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
    });
  }
  if (Array.isArray(value)) return `[${value.map(py).join(', ')}]`;
  return `{${Object.entries(value as Record<string, unknown>).map(([k, v]) => `${JSON.stringify(k)}: ${py(v)}`).join(', ')}}`;
}

const TEMPLATE = `#!/usr/bin/env python3
# Made by npo-playground (@MADE_BY@) for the model "@MODEL_NAME@".
# Reproduces its pair of images with diffusers and the official Diffusion-NPO recipe (G-U-N/Diffusion-NPO gen.py):
#   θ_pos = θ + η;  θ_neg = θ + α·η + β·δ  (a dense η is mixed as gen.py's mix_models with merge_weight = 1 − α);
#   baseline = standard CFG with θ_pos on both branches; NPO = the unconditional half of each step on θ_neg.
#   python npo_pair.py                      writes baseline.png, npo.png (and their latents, float32 .f32) to --out
#   accelerate launch --multi_gpu --num_processes 8 npo_pair.py --prompts prompts.txt --out eval/
#                                           one prompt per line, split across GPUs; seed + line number per prompt;
#                                           images and settings.csv (one row per image) in --out
# Paths are as npo-playground knew them; change them with --base, --eta-unet, --eta-lora, --delta-lora (path:scale).
# diffusers v0.29 (checked with v0.29.2 on torch 1.13), accelerate, peft, transformers.@NOTES@
import argparse
import copy
import csv
import os

import torch
from accelerate import PartialState
from diffusers import @PIPELINE@, UNet2DConditionModel, @SCHEDULER_CLASS@
from safetensors.torch import load_file

SETTINGS = @SETTINGS@
BASE_MODEL = @BASE@
ETA_UNET = @ETA_UNET@  # a dense η: a DPO-tuned UNet (folder or Hub id), or None
ETA_LORAS = @ETA_LORAS@  # or η as LoRA files, "path:scale"
DELTA_LORAS = @DELTA_LORAS@  # δ (NPO) LoRA files, "path:scale"
# "@SCHEDULER_NAME@" in the page: this class, from the prepared model's scheduler_config.json
SCHEDULER_CONFIG = @SCHEDULER_CONFIG@


class NpoCfgUNet(torch.nn.Module):
    """diffusers' CFG batch is [unconditional; conditional]: the first half runs θ_neg, the second θ_pos."""

    def __init__(self, pos, neg):
        super().__init__()
        self.pos, self.neg, self.npo = pos, neg, True

    def __getattr__(self, name):  # config, dtype, add_embedding, ... are θ_pos's
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "pos":
                raise
            return getattr(self.pos, name)

    def forward(self, sample, timestep, encoder_hidden_states, added_cond_kwargs=None, return_dict=True, **kwargs):
        if not self.npo:
            return self.pos(sample, timestep, encoder_hidden_states, added_cond_kwargs=added_cond_kwargs, return_dict=return_dict, **kwargs)
        half = lambda x, i: None if x is None else x.chunk(2)[i]
        t = [half(timestep, i) if torch.is_tensor(timestep) and timestep.ndim and timestep.shape[0] == sample.shape[0] else timestep for i in (0, 1)]
        added = [None if added_cond_kwargs is None else {k: half(v, i) for k, v in added_cond_kwargs.items()} for i in (0, 1)]
        out = [unet(half(sample, i), t[i], half(encoder_hidden_states, i), added_cond_kwargs=added[i], return_dict=False, **kwargs)[0]
               for i, unet in ((0, self.neg), (1, self.pos))]
        out = torch.cat(out)
        return (out,) if not return_dict else type("UNetOutput", (), {"sample": out})()


def scaled(spec):
    path, _, scale = spec.rpartition(":")
    try:
        return (path, float(scale)) if path else (spec, 1.0)
    except ValueError:
        return spec, 1.0


def load_unet(path, dtype):
    """A UNet folder or Hub id, with or without a unet/ subfolder (gen.py: mhdang/dpo-sd1.5-text2image-v1, "unet")."""
    try:
        return UNet2DConditionModel.from_pretrained(path, subfolder="unet", torch_dtype=dtype)
    except (OSError, EnvironmentError):
        return UNet2DConditionModel.from_pretrained(path, torch_dtype=dtype)


def fuse_loras(pipe, unet, loras):
    """unet + Σ weight·ΔW of (path, weight) LoRAs, fused into the weights (diffusers adapters, set_adapters, fuse_lora)."""
    pipe.unet = unet
    if not loras:
        return unet
    names = [f"lora_{i}" for i in range(len(loras))]
    for name, (path, _) in zip(names, loras):
        # a file is read as gen.py reads its SPO and NPO LoRAs (load_file, then load_lora_weights of the dict)
        pipe.load_lora_weights(load_file(path) if os.path.isfile(path) else path, adapter_name=name)
    pipe.set_adapters(names, adapter_weights=[w for _, w in loras])
    pipe.fuse_lora(adapter_names=names)
    pipe.unload_lora_weights()
    return pipe.unet


def mix_models(module1, module2, alpha):
    """gen.py's mix_models: every parameter becomes alpha·module1 + (1 − alpha)·module2 (module1 is changed)."""
    for p1, p2 in zip(module1.parameters(), module2.parameters()):
        p1.data = alpha * p1.data + (1 - alpha) * p2.data.to(p1.device)
    return module1


def load_pipeline(args, device, dtype):
    pipe = @PIPELINE@.from_pretrained(args.base, torch_dtype=dtype, **({"safety_checker": None} if "safety_checker" in @PIPELINE@._optional_components else {}))
    pipe.scheduler = @SCHEDULER_CLASS@.from_config(SCHEDULER_CONFIG)
    base = pipe.unet
    alpha, beta = SETTINGS["alpha"], SETTINGS["beta"]
    eta_loras, delta_loras = [scaled(s) for s in args.eta_lora], [scaled(s) for s in args.delta_lora]
    if args.eta_unet:  # dense η: θ_pos = θ_dpo; θ_neg = mix(θ, θ_dpo, 1 − α) + β·δ
        pos = load_unet(args.eta_unet, dtype)
        neg = mix_models(copy.deepcopy(base), pos, 1 - alpha)
        neg = fuse_loras(pipe, neg, [(p, beta * w) for p, w in delta_loras])
    else:  # LoRA η (or none): θ_pos = θ + η; θ_neg = θ + α·η + β·δ
        neg = fuse_loras(pipe, copy.deepcopy(base), [(p, alpha * w) for p, w in eta_loras] + [(p, beta * w) for p, w in delta_loras])
        pos = fuse_loras(pipe, base, eta_loras)
    pipe.unet = NpoCfgUNet(pos.eval(), neg.eval())
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def generate(pipe, prompt, seed, npo):
    """Final latents (before the VAE) and the PIL image; the initial noise is a torch CPU generator's, in float32."""
    pipe.unet.npo = npo
    width = SETTINGS["width"] or pipe.unet.config.sample_size * pipe.vae_scale_factor
    height = SETTINGS["height"] or pipe.unet.config.sample_size * pipe.vae_scale_factor
    generator = torch.Generator("cpu").manual_seed(seed)
    shape = (1, pipe.unet.config.in_channels, height // pipe.vae_scale_factor, width // pipe.vae_scale_factor)
    noise = torch.randn(shape, generator=generator, dtype=torch.float32)
    latents = pipe(prompt, negative_prompt=SETTINGS["negative_prompt"], num_inference_steps=SETTINGS["steps"],
                   guidance_scale=SETTINGS["guidance_scale"], width=width, height=height, generator=generator,
                   latents=noise.to(pipe.device, pipe.unet.dtype), output_type="latent").images
    vae = pipe.vae
    if vae.dtype == torch.float16 and vae.config.force_upcast:
        vae = vae.to(torch.float32)
    with torch.no_grad():
        image = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
    return latents, pipe.image_processor.postprocess(image, output_type="pil")[0]


def main():
    parser = argparse.ArgumentParser(description="npo-playground's pair (or a prompt list) with diffusers and Diffusion-NPO")
    parser.add_argument("--out", default="npo-out")
    parser.add_argument("--prompts", help="a text file, one prompt per line: the batch form")
    parser.add_argument("--base", default=BASE_MODEL)
    parser.add_argument("--eta-unet", default=ETA_UNET)
    parser.add_argument("--eta-lora", action="append", default=None)
    parser.add_argument("--delta-lora", action="append", default=None)
    parser.add_argument("--seed", type=int, default=SETTINGS["seed"])
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default=None, help="default: float16 on GPU, float32 on CPU")
    args = parser.parse_args()
    args.eta_lora = ETA_LORAS if args.eta_lora is None else args.eta_lora
    args.delta_lora = DELTA_LORAS if args.delta_lora is None else args.delta_lora
    state = PartialState()
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.float16 if state.device.type == "cuda" else torch.float32)
    pipe = load_pipeline(args, state.device, dtype)
    os.makedirs(args.out, exist_ok=True)
    if not args.prompts:
        for kind, npo in (("baseline", False), ("npo", True)):
            latents, image = generate(pipe, SETTINGS["prompt"], args.seed, npo)
            image.save(os.path.join(args.out, f"{kind}.png"))
            latents.float().cpu().numpy().astype("<f4").tofile(os.path.join(args.out, f"{kind}.latents.f32"))
        print(f"wrote {args.out}/baseline.png and npo.png")
        return
    with open(args.prompts, encoding="utf-8") as f:
        prompts = [line.strip() for line in f if line.strip()]
    rows = []
    with state.split_between_processes(list(enumerate(prompts))) as mine:
        for index, prompt in mine:
            for kind, npo in (("baseline", False), ("npo", True)):
                image = generate(pipe, prompt, args.seed + index, npo)[1]
                name = f"{index:06d}_{kind}.png"
                image.save(os.path.join(args.out, name))
                rows.append({"index": index, "kind": kind, "file": name, "prompt": prompt, "seed": args.seed + index,
                             "negative_prompt": SETTINGS["negative_prompt"], "steps": SETTINGS["steps"], "scheduler": "@SCHEDULER_CLASS@",
                             "guidance_scale": SETTINGS["guidance_scale"], "alpha": SETTINGS["alpha"], "beta": SETTINGS["beta"],
                             "base": args.base, "eta_unet": args.eta_unet, "eta_lora": " ".join(args.eta_lora), "delta_lora": " ".join(args.delta_lora)})
    part = os.path.join(args.out, f"settings.part{state.process_index}.csv")
    with open(part, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["index"])
        writer.writeheader()
        writer.writerows(rows)
    state.wait_for_everyone()
    if state.is_main_process:
        parts = [os.path.join(args.out, f"settings.part{i}.csv") for i in range(state.num_processes)]
        merged = [row for p in parts for row in csv.DictReader(open(p, encoding="utf-8"))]
        merged.sort(key=lambda r: (int(r["index"]), r["kind"]))
        with open(os.path.join(args.out, "settings.csv"), "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(merged[0]))
            writer.writeheader()
            writer.writerows(merged)
        for p in parts:
            os.remove(p)
        print(f"wrote {len(merged)} images and settings.csv to {args.out}")


if __name__ == "__main__":
    main()
`;
