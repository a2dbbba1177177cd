// WGSL sources imported as text with Vite's `?raw` suffix (Vite, Vitest; Node scripts need the hook in scripts/bench-gpu.ts).
declare module '*.wgsl?raw' {
  const source: string;
  export default source;
}
