// Node-only: a WebGPU `GPU` object from the `webgpu` package (Dawn) on SwiftShader's Vulkan driver, for the kernel
// tests and the benchmark. Never imported by browser code. Fails loudly, naming what is missing, instead of letting
// a test skip: Dawn needs the SwiftShader ICD json and a Vulkan loader (libvulkan.so.1).
import { existsSync } from 'node:fs';

export const DEFAULT_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

const LOADER_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib'];

function findVulkanLoader(): string | undefined {
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), ...LOADER_DIRS];
  return dirs.map((d) => `${d}/libvulkan.so.1`).find((path) => existsSync(path));
}

/**
 * Sets VK_ICD_FILENAMES (if unset) and XDG_RUNTIME_DIR before Dawn starts, then returns `create([])` after checking
 * that it has an adapter. Environment variables must be set before the first `create`: Dawn reads them when it loads
 * Vulkan. Keep the returned object referenced while its devices live (acquireDevice does this for you).
 */
export async function createNodeGpu(): Promise<GPU> {
  process.env.VK_ICD_FILENAMES ??= DEFAULT_ICD;
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const icd = process.env.VK_ICD_FILENAMES;
  if (process.platform === 'linux' && !icd.split(':').some((p) => existsSync(p))) {
    throw new Error(
      `WebGPU tests need a Vulkan driver: no ICD file at VK_ICD_FILENAMES=${icd}. ` +
        'Install Debian chromium (apt-get install chromium, it ships SwiftShader) or point VK_ICD_FILENAMES at one.',
    );
  }
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  const gpu = create([]);
  await requireNodeAdapter(gpu);
  return gpu;
}

/** Like `gpu.requestAdapter()`, but a missing adapter is an error that says why it most likely is missing. */
export async function requireNodeAdapter(gpu: GPU): Promise<GPUAdapter> {
  const adapter = await gpu.requestAdapter();
  if (adapter) return adapter;
  const loader = findVulkanLoader();
  throw new Error(
    'WebGPU (Dawn) found no adapter. ' +
      (loader
        ? `A Vulkan loader exists (${loader}); check VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES}.`
        : 'No Vulkan loader libvulkan.so.1 was found: run with LD_LIBRARY_PATH=/usr/lib/chromium (Debian chromium ' +
          'ships one; `npm run test:gpu` does this) or install libvulkan1.'),
  );
}
