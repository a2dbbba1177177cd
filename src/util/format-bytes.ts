// Byte counts as people read them (decimal units, as browsers and file managers show sizes), for the page and the CLIs.

/** `1234` → "1.2 kB", `3.44e9` → "3.44 GB": two decimals for GB, where a model's size lives. */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}
