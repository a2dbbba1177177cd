// The page's Content-Security-Policy: one source for the dev and preview servers (vite.config.ts) and the header set
// recommended for the built files (public/_headers, kept equal to this by csp.test.ts; docs/security.md).
//   - connect-src: the app's own origin, plus the origin of `?model=` when that is another origin (the worker fetches
//     the model's manifest and files from it), plus the Hugging Face Hub's origins for "Prepare a model… from
//     Hugging Face" (huggingface.co and the CDN hosts it redirects large files to, all under huggingface.co and
//     hf.co: HF moves them between regional hosts, so their subdomains are named by wildcard), or instead the one
//     origin `?hub=` names (a mirror). Only the person's press of "Prepare from the Hub" contacts them;
//   - script-src 'self' 'wasm-unsafe-eval': no inline script, no eval; onnxruntime-web compiles its WebAssembly,
//     which CSP allows only with 'wasm-unsafe-eval' (it does not allow JS eval);
//   - worker-src 'self': the sampling worker and ORT's pthread workers are files of this origin;
//   - img-src data: blob: for canvases exported as images; style-src 'self' (dev adds 'unsafe-inline': Vite injects
//     CSS as <style> tags there); everything else off (objects, frames, base, forms).
// The dev server also needs its HMR WebSocket and React's refresh preamble (an inline script, given a nonce).

/** The Hub's origins: the API and /resolve/ on huggingface.co, LFS / Xet downloads on CDN hosts under hf.co. */
export const HUB_ORIGINS = ['https://huggingface.co', 'https://*.huggingface.co', 'https://*.hf.co'];

export interface CspOptions {
  /** The origin of `?model=` when the page loads a model from another origin (validated: http(s) only). */
  modelOrigin?: string;
  /** The origin of `?hub=` (another Hub endpoint): named instead of HUB_ORIGINS. */
  hubOrigin?: string;
  /** Vite's dev server: inline <style> for CSS modules, the HMR websocket, the React refresh preamble's nonce. */
  dev?: { nonce: string };
}

export function contentSecurityPolicy({ modelOrigin, hubOrigin, dev }: CspOptions = {}): string {
  const connect = ["'self'", ...(modelOrigin ? [modelOrigin] : []), ...(hubOrigin ? [hubOrigin] : HUB_ORIGINS), ...(dev ? ['ws:', 'wss:'] : [])];
  const directives: [string, ...string[]][] = [
    ['default-src', "'self'"],
    ['script-src', "'self'", "'wasm-unsafe-eval'", ...(dev ? [`'nonce-${dev.nonce}'`] : [])],
    ['worker-src', "'self'"],
    ['connect-src', ...connect],
    ['img-src', "'self'", 'data:', 'blob:'],
    ['style-src', "'self'", ...(dev ? ["'unsafe-inline'"] : [])],
    ['font-src', "'self'"],
    ['object-src', "'none'"],
    ['base-uri', "'none'"],
    ['form-action', "'none'"],
    ['frame-ancestors', "'none'"],
  ];
  return directives.map((d) => d.join(' ')).join('; ');
}

/** The origin a `?model=` value points to, if it is another http(s) origin than `pageOrigin`; undefined otherwise. */
export function modelOriginOf(pageUrl: string, pageOrigin: string): string | undefined {
  return originOfParam(pageUrl, pageOrigin, 'model');
}

/** The Hub endpoint `?hub=` names (an http(s) origin other than the page's), or undefined for the default Hub. */
export function hubOriginOf(pageUrl: string, pageOrigin = new URL(pageUrl).origin): string | undefined {
  return originOfParam(pageUrl, pageOrigin, 'hub');
}

function originOfParam(pageUrl: string, pageOrigin: string, param: string): string | undefined {
  let model: string | null;
  try {
    model = new URL(pageUrl, pageOrigin).searchParams.get(param);
  } catch {
    return undefined;
  }
  if (!model) return undefined;
  try {
    const url = new URL(model, pageOrigin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    return url.origin === pageOrigin ? undefined : url.origin;
  } catch {
    return undefined;
  }
}

/** Headers for every response of the built app besides CSP (cross-origin isolation for ORT's WASM threads). */
export const STATIC_HEADERS: Record<string, string> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'same-origin',
};
