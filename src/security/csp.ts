// The page's Content-Security-Policy: one source for the dev and preview servers (vite.config.ts) and the header set
// recommended for the built files (public/_headers, kept equal to this by csp.test.ts; docs/security.md).
//   - connect-src: the app's own origin, plus the origin of `?model=` when that is another origin (the worker fetches
//     the model's manifest and files from it; nothing else may be fetched);
//   - script-src 'self' 'wasm-unsafe-eval': no inline script, no eval; onnxruntime-web compiles its WebAssembly,
//     which CSP allows only with 'wasm-unsafe-eval' (it does not allow JS eval);
//   - worker-src 'self': the sampling worker and ORT's pthread workers are files of this origin;
//   - img-src data: blob: for canvases exported as images; style-src 'self' (dev adds 'unsafe-inline': Vite injects
//     CSS as <style> tags there); everything else off (objects, frames, base, forms).
// The dev server also needs its HMR WebSocket and React's refresh preamble (an inline script, given a nonce).

export interface CspOptions {
  /** The origin of `?model=` when the page loads a model from another origin (validated: http(s) only). */
  modelOrigin?: string;
  /** Vite's dev server: inline <style> for CSS modules, the HMR websocket, the React refresh preamble's nonce. */
  dev?: { nonce: string };
}

export function contentSecurityPolicy({ modelOrigin, dev }: CspOptions = {}): string {
  const connect = ["'self'", ...(modelOrigin ? [modelOrigin] : []), ...(dev ? ['ws:', 'wss:'] : [])];
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
  let model: string | null;
  try {
    model = new URL(pageUrl, pageOrigin).searchParams.get('model');
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
