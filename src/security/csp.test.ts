// The recommended headers for the built files (public/_headers) are the ones the preview server sends, and the
// `?model=` origin rule admits exactly one other http(s) origin.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { contentSecurityPolicy, hubOriginOf, HUB_ORIGINS, modelOriginOf, STATIC_HEADERS } from './csp.ts';

const directive = (csp: string, name: string) => csp.split('; ').find((d) => d.startsWith(`${name} `))?.split(' ').slice(1);

describe('Content-Security-Policy', () => {
  it('public/_headers carries the built app policy and headers', () => {
    const text = readFileSync(new URL('../../public/_headers', import.meta.url), 'utf8');
    const headers = new Map(text.split('\n').filter((l) => l.startsWith('  ')).map((l) => {
      const at = l.indexOf(':');
      return [l.slice(0, at).trim(), l.slice(at + 1).trim()];
    }));
    expect(headers.get('Content-Security-Policy')).toBe(contentSecurityPolicy());
    for (const [k, v] of Object.entries(STATIC_HEADERS)) expect(headers.get(k)).toBe(v);
  });

  it('allows no inline script and no eval, only WebAssembly compilation', () => {
    const csp = contentSecurityPolicy({ modelOrigin: 'https://models.example.org' });
    expect(directive(csp, 'script-src')).toEqual(["'self'", "'wasm-unsafe-eval'"]);
    expect(directive(csp, 'connect-src')).toEqual(["'self'", 'https://models.example.org', ...HUB_ORIGINS]);
    // No wildcard but the Hub's own subdomains (its CDN hosts move: cdn-lfs*.hf.co, cas-bridge.xethub.hf.co, …).
    expect(csp.replace('https://*.huggingface.co', '').replace('https://*.hf.co', '')).not.toMatch(/'unsafe-eval'|'unsafe-inline'|\*/);
    expect(directive(contentSecurityPolicy({ dev: { nonce: 'abc' } }), 'script-src')).toEqual(["'self'", "'wasm-unsafe-eval'", "'nonce-abc'"]);
  });

  it('names the Hub\'s origins, or instead the one origin ?hub= gives', () => {
    expect(directive(contentSecurityPolicy(), 'connect-src')).toEqual(["'self'", 'https://huggingface.co', 'https://*.huggingface.co', 'https://*.hf.co']);
    const page = 'http://127.0.0.1:4173';
    const mirror = hubOriginOf(`${page}/?hub=http://127.0.0.1:5000/some/path`);
    expect(mirror).toBe('http://127.0.0.1:5000');
    expect(directive(contentSecurityPolicy({ hubOrigin: mirror }), 'connect-src')).toEqual(["'self'", 'http://127.0.0.1:5000']);
    expect(hubOriginOf(`${page}/?hub=javascript:alert(1)`)).toBeUndefined();
    expect(hubOriginOf(`${page}/`)).toBeUndefined();
  });

  it('takes the origin of another-origin ?model= URLs only', () => {
    const page = 'http://127.0.0.1:4173';
    expect(modelOriginOf('/?model=https://models.example.org/sd15/', page)).toBe('https://models.example.org');
    expect(modelOriginOf('/?model=http://10.0.0.2:8080/m', page)).toBe('http://10.0.0.2:8080');
    expect(modelOriginOf('/?model=/tiny/', page)).toBeUndefined();
    expect(modelOriginOf(`/?model=${page}/models/`, page)).toBeUndefined();
    expect(modelOriginOf('/?model=javascript:alert(1)', page)).toBeUndefined();
    expect(modelOriginOf('/?model=data:text/plain,x', page)).toBeUndefined();
    // Nothing from the query reaches the header but a serialized origin: no ';', spaces or line breaks.
    expect(modelOriginOf('/?model=https://a.example;%20script-src%20*', page)).toBeUndefined();
    expect(modelOriginOf('/?model=https://a.example%0d%0aX-Injected:1', page)).toMatch(/^https:\/\/[a-z0-9.:-]+$/);
    expect(modelOriginOf('/', page)).toBeUndefined();
  });
});
