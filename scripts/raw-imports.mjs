// Lets Node scripts (run with tsx) import `*.wgsl?raw` like Vite does: WGSL sources sit in .wgsl files beside their
// TypeScript wrappers (src/gpu), and the sampling engine imports them even where it then runs on the CPU.
// Use: tsx --import ./scripts/raw-imports.mjs <script>
import { register } from 'node:module';

const hook = `
import { readFile } from 'node:fs/promises';
export async function load(url, context, next) {
  if (!url.endsWith('?raw')) return next(url, context);
  const text = await readFile(new URL(url.slice(0, -'?raw'.length)), 'utf8');
  return { format: 'module', source: 'export default ' + JSON.stringify(text) + ';', shortCircuit: true };
}`;
register('data:text/javascript,' + encodeURIComponent(hook));
