// Public API of src/train: DPO / NPO LoRA training graphs, the AdamW optimiser, the training loop and pairs.json.
export { createAdamW, globalNorm, OptimizerError } from './optimizer.ts';
export type { AdamW, AdamWOptions, StepInfo } from './optimizer.ts';
export { buildDpoGraph, DPO_INPUTS, DPO_OUTPUTS, SD_UNET_IO } from './dpo-graph.ts';
export type { DpoGraph, DpoGraphOptions, UnetIo } from './dpo-graph.ts';
export { createDpoTrainer, trainLora, trainingAlphas, TrainingError } from './train-lora.ts';
export type { DpoOutputs, DpoTrainer, ModelFiles, StepReport, TrainerSetup, TrainLoraOptions } from './train-lora.ts';
export { decodePairs, encodeImage, encodePairs, parsePairs, PairsError, IMAGE_ENCODINGS, PAIRS_VERSION } from './pairs.ts';
export type { EncodedImage, ImageEncoding, PairsFile, ParsePairsOptions, PreferencePair } from './pairs.ts';
export { createRandom } from './random.ts';
export type { Random } from './random.ts';
