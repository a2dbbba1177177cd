// LoRA tensor-name knowledge: which key format a tensor name belongs to, which role it plays (down / up / alpha),
// and how a module path of the graph is spelled in each format (DESIGN §3).
//   diffusers (old): [unet.]<path>.lora.down.weight, ...lora.up.weight
//                    attention-processor form [unet.]<...attnN>[.processor].<proj>_lora.down.weight (to_out -> to_out.0)
//                    LoRACompatibleLinear / text-encoder patch forms [unet.]<path>.lora_layer|lora_linear_layer.down.weight
//   PEFT:            [unet. | base_model.model.]<path>.lora_A.weight / .lora_B.weight
//   kohya:           lora_unet_<path with '.' -> '_'>.lora_down.weight / .lora_up.weight / .alpha
//                    (diffusers module names for SD1.x; SDXL files use SGM names, see sgmPath)
// Dotted formats may also carry a scalar `<path>.alpha` (diffusers' kohya conversion keeps network alphas that way).

export type LoraFormat = 'diffusers' | 'peft' | 'kohya';
export type KeyRole = 'down' | 'up' | 'alpha';

export type KeyClass =
  | { kind: 'lora'; format: LoraFormat | 'dotted'; module: string; role: KeyRole; textEncoder: boolean }
  | { kind: 'unsupported'; variant: string; textEncoder: boolean }
  | { kind: 'unknown' };

export const KOHYA_UNET_PREFIX = 'lora_unet_';
/** What follows a kohya module name for each tensor role. */
export const KOHYA_SUFFIX: Record<KeyRole, string> = { down: '.lora_down.weight', up: '.lora_up.weight', alpha: '.alpha' };
const KOHYA_TE_PREFIX = /^lora_te\d*_/;
const DOTTED_TE_PREFIX = /^(text_encoder(_\d+)?|te\d*|text_model)\./;

/** Suffixes of LoRA variants we recognise but cannot merge as up·down (LyCORIS, DoRA, full diffs, LoRA bias). */
const UNSUPPORTED_SUFFIXES: [RegExp, string][] = [
  [/\.hada_(w[12]_[ab]|t[12])$/, 'LoHa (LyCORIS hadamard product)'],
  [/\.lokr_(w[12](_[ab])?|t2)$/, 'LoKr (LyCORIS Kronecker product)'],
  [/\.lora_mid\.weight$/, 'LoCon with Tucker decomposition (lora_mid)'],
  [/\.(dora_scale|lora_magnitude_vector(\.\w+)?)$/, 'DoRA (weight-decomposed LoRA)'],
  [/\.(diff|diff_b)$/, 'full weight difference (.diff)'],
  [/\.(w_norm|b_norm)$/, 'norm-layer LyCORIS weights'],
  [/\.lora_B\.bias$/, 'PEFT LoRA with bias (lora_bias=True)'],
  [/\.oft_(blocks|diag)$|\.oft_r$/, 'OFT / BOFT'],
  [/\.ia3_l$/, 'IA3'],
];

function isDottedTextEncoder(name: string): boolean {
  return DOTTED_TE_PREFIX.test(name.replace(/^base_model\.model\./, ''));
}

function dotted(format: LoraFormat | 'dotted', module: string, role: KeyRole): KeyClass {
  return { kind: 'lora', format, module, role, textEncoder: isDottedTextEncoder(module) };
}

/** Classify one tensor name. `module` is the name with the role suffix removed (prefix still on). */
export function classifyKey(key: string): KeyClass {
  if (key.startsWith('lora_')) {
    const textEncoder = KOHYA_TE_PREFIX.test(key);
    if (textEncoder || key.startsWith(KOHYA_UNET_PREFIX)) {
      const dot = key.indexOf('.');
      const module = dot < 0 ? key : key.slice(0, dot);
      const rest = dot < 0 ? '' : key.slice(dot);
      const role: KeyRole | null = rest === '.lora_down.weight' ? 'down' : rest === '.lora_up.weight' ? 'up' : rest === '.alpha' ? 'alpha' : null;
      if (role) return { kind: 'lora', format: 'kohya', module, role, textEncoder };
      for (const [re, variant] of UNSUPPORTED_SUFFIXES) if (re.test(rest)) return { kind: 'unsupported', variant, textEncoder };
      return { kind: 'unknown' };
    }
  }
  let m = /^(.*?)\.(?:processor\.(\w+)|(to_q|to_k|to_v|to_out))_lora\.(down|up)\.weight$/.exec(key);
  if (m) {
    const proj = m[2] ?? m[3];
    return dotted('diffusers', `${m[1]}.${proj === 'to_out' ? 'to_out.0' : proj}`, m[4] as KeyRole);
  }
  m = /^(.+)\.(lora|lora_linear_layer|lora_layer)\.(down|up)\.weight$/.exec(key);
  if (m) return dotted('diffusers', m[1], m[3] as KeyRole);
  m = /^(.+)\.lora_([AB])\.weight$/.exec(key);
  if (m) return dotted('peft', m[1], m[2] === 'A' ? 'down' : 'up');
  m = /^(.+)\.alpha$/.exec(key);
  if (m) return dotted('dotted', m[1], 'alpha');
  for (const [re, variant] of UNSUPPORTED_SUFFIXES) {
    if (re.test(key)) return { kind: 'unsupported', variant, textEncoder: isDottedTextEncoder(key) };
  }
  return { kind: 'unknown' };
}

/** Prefixes a dotted (diffusers / PEFT) key may carry before the module path, most specific first. */
export const DOTTED_PREFIXES = ['base_model.model.unet.', 'base_model.model.', 'unet.', ''];

/** kohya spells a module path with every '.' replaced by '_' (sd-scripts networks/lora.py). */
export function kohyaName(modulePath: string): string {
  return KOHYA_UNET_PREFIX + modulePath.replace(/\./g, '_');
}

/**
 * The SGM / original-LDM spelling of an attention module path, as kohya writes SDXL LoRAs
 * (`input_blocks.4.1.transformer_blocks.0.attn1.to_q`). The index arithmetic assumes layers_per_block = 2 (SD1.x,
 * SD2.x, SDXL), as diffusers' _maybe_map_sgm_blocks_to_diffusers does with their configs: each down level has
 * 2 (resnet, attention) input blocks and a downsampler; each up level has 3 output blocks.
 */
export function sgmPath(modulePath: string): string | null {
  let m = /^down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)$/.exec(modulePath);
  if (m) return `input_blocks.${3 * Number(m[1]) + Number(m[2]) + 1}.1.${m[3]}`;
  m = /^up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)$/.exec(modulePath);
  if (m) return `output_blocks.${3 * Number(m[1]) + Number(m[2])}.1.${m[3]}`;
  m = /^mid_block\.attentions\.0\.(.+)$/.exec(modulePath);
  if (m) return `middle_block.1.${m[1]}`;
  return null;
}

/** The key this module's tensor has in `format` (used for writing and for "closest expected key" hints). */
export function expectedKey(format: LoraFormat, modulePath: string, role: KeyRole, dottedPrefix = 'unet.'): string {
  if (format === 'kohya') {
    return kohyaName(modulePath) + KOHYA_SUFFIX[role];
  }
  if (role === 'alpha') return `${dottedPrefix}${modulePath}.alpha`;
  if (format === 'diffusers') return `${dottedPrefix}${modulePath}.lora.${role}.weight`;
  return `${dottedPrefix}${modulePath}.lora_${role === 'down' ? 'A' : 'B'}.weight`;
}

/** Levenshtein distance, for naming the closest expected key. Inputs are capped by the caller. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}
