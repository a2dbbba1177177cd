// Runs an async function's calls one after another, each starting when the previous one has settled.
// Why: onnxruntime-web's sessions do not take concurrent runs (two generations at once on the WebGPU EP in Node
// blocked the thread for good: src/engine/engine-gpu.test.ts), and an engine's per-generation counters assume one
// generation at a time. The worker queues its jobs anyway; this keeps the engines safe for every other caller.
export function oneAtATime<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  let previous: Promise<unknown> = Promise.resolve();
  return (...args: A) => {
    const run = previous.then(() => fn(...args));
    previous = run.catch(() => undefined);
    return run;
  };
}
