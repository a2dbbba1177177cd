// Session options that start a large training graph in seconds: onnxruntime's parallel executor.
//
// onnxruntime 1.30's sequential executor plans buffer reuse for every value before the first run, and on a DPO training
// graph of 24k nodes (the tiny SDXL fixture's; real SDXL's is as large) that plan takes 86 s on 2 cores, at every
// optimisation level. The parallel executor plans no reuse and is ready in 12 s (`npm run bench:session-start`;
// SD1.5's 6k-node graph: 8.5 s vs 1.9 s). Every kernel computes what it does under the sequential executor (the loss
// and all LoRA gradients are bit-identical on both fixtures), but values are not packed into reused buffers, so peak
// memory is higher (one tiny SDXL session: 334 vs 243 MiB RSS). Hence: tests and quick experiments
// use it (`npm run train -- --execution-mode parallel`); the default stays sequential, whose memory the memory plan
// (memory-plan.ts) predicts. Tests of execution order (checkpoint.test.ts) must not use it.
import type { InferenceSession } from 'onnxruntime-common';

export const QUICK_START: InferenceSession.SessionOptions = { executionMode: 'parallel' };
