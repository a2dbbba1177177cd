// Vitest globalSetup (runs in the main process before test workers are forked): lets Dawn find a Vulkan loader.
// Debian's chromium ships libvulkan.so.1 in /usr/lib/chromium but the system may not have one (package libvulkan1).
// The dynamic linker reads LD_LIBRARY_PATH only at process start, so it must be set here, before the forks exist;
// setting it inside a test file is too late. Use: `test: { globalSetup: ['src/gpu/vitest-global-setup.ts'] }`.
import { existsSync } from 'node:fs';

export default function setup(): void {
  const dir = '/usr/lib/chromium';
  if (process.platform !== 'linux' || !existsSync(`${dir}/libvulkan.so.1`)) return;
  const current = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  if (!current.includes(dir)) process.env.LD_LIBRARY_PATH = [...current, dir].join(':');
}
