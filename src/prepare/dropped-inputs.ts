// What a folder or file dropped on "Prepare a model…" is, from its paths alone, so that one drop of everything (the
// ONNX export, the DPO UNet, the δ LoRA) fills the preparation's inputs as the pickers would:
//   an ONNX export     has unet/model.onnx (diffusers' and optimum's layouts both do);
//   a DPO UNet (η)     has diffusion_pytorch_model*.safetensors at its top, or in its unet/ (a whole diffusers
//                      repository such as mhdang/dpo-sd1.5-text2image-v1, whose unet/ is taken);
//   a LoRA (δ)         a .safetensors file.
// Anything else is named back to the person with what was expected.

export type DroppedInput =
  | { role: 'onnx' }
  | { role: 'etaUnet'; /** The subfolder holding the UNet ('' for the folder itself). */ folder: string }
  | { role: 'delta' }
  | { role: 'unknown'; why: string };

const UNET_WEIGHTS = /^diffusion_pytorch_model(-\d+-of-\d+)?\.safetensors$|^diffusion_pytorch_model\.safetensors\.index\.json$/;

/** A dropped folder's role, from the paths inside it ("unet/model.onnx"). */
export function droppedFolderInput(name: string, paths: Iterable<string>): DroppedInput {
  const all = [...paths];
  if (all.includes('unet/model.onnx')) return { role: 'onnx' };
  const weightsIn = (prefix: string) => all.some((p) => p.startsWith(prefix) && UNET_WEIGHTS.test(p.slice(prefix.length)));
  if (weightsIn('')) return { role: 'etaUnet', folder: '' };
  if (weightsIn('unet/')) return { role: 'etaUnet', folder: 'unet' };
  return { role: 'unknown', why: `${name}/ is neither an ONNX export (no unet/model.onnx) nor a diffusers UNet (no diffusion_pytorch_model.safetensors at its top or in unet/)` };
}

/** A dropped file's role, from its name. */
export function droppedFileInput(name: string): DroppedInput {
  if (name.toLowerCase().endsWith('.safetensors')) return { role: 'delta' };
  return { role: 'unknown', why: `${name} is not a LoRA (.safetensors); drop an ONNX export folder, a diffusers UNet folder or a LoRA file` };
}

/** The files under `folder` ('' for all), with paths relative to it. */
export function subfolder<T>(files: ReadonlyMap<string, T>, folder: string): Map<string, T> {
  if (!folder) return new Map(files);
  const prefix = `${folder}/`;
  return new Map([...files].filter(([path]) => path.startsWith(prefix)).map(([path, file]) => [path.slice(prefix.length), file]));
}
