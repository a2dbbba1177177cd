// `npm run export-pairs`: preference pairs out as a Pick-a-Pic-layout parquet dataset that diffusers'
// train_diffusion_dpo.py reads unchanged (src/train/dataset-export.ts says what is written and why).
//   npm run export-pairs -- --pairs <pairs.json | image folder | .zip | .parquet> --out <dir> [--reverse]
//                           [--shard-rows N] [--shard-mb 500] [--family sd15|sdxl] [--num-processes 8] [--overwrite]
// --reverse flips the labels (NPO: the script then trains δ). --family and --num-processes only shape the
// `accelerate launch` command printed and written into the dataset card. Folder, zip and shard images keep their bytes;
// pairs.json pixels become PNG. Progress goes to stderr; the last line on stdout is the dataset folder.
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { positiveInt } from './int-arg.ts';
import { fileWriter } from 'hyparquet-writer';
import { accelerateCommand, RELEASED_NPO_SETTINGS, type ScriptFamily } from '../train/accelerate-command.ts';
import { datasetCard, rowsFromEncodedPairs, rowsFromPairsJson, shardPath, writeDatasetShards, type DatasetRow, type DatasetSummary } from '../train/dataset-export.ts';
import { openPairsSourceNode } from '../train/decode-node.ts';

const USAGE = 'usage: npm run export-pairs -- --pairs <pairs.json | folder | .zip | .parquet> --out <dir> [--reverse] '
  + '[--shard-rows N] [--shard-mb 500] [--family sd15|sdxl] [--num-processes 8] [--overwrite]';


/** Shards already in `<out>/data` would join the new ones under the card's data/train-* pattern: refuse or remove. */
function clearOldShards(dataDir: string, overwrite: boolean) {
  const old = readdirSync(dataDir).filter((name) => name.endsWith('.parquet'));
  if (old.length && !overwrite) throw new Error(`${dataDir} already holds ${old.join(', ')}; they would be read as part of this dataset (pass --overwrite to replace them)`);
  for (const name of old) rmSync(join(dataDir, name));
}

async function main() {
  const { values } = parseArgs({
    options: {
      pairs: { type: 'string' }, out: { type: 'string' }, reverse: { type: 'boolean', default: false }, 'shard-rows': { type: 'string' },
      'shard-mb': { type: 'string' }, family: { type: 'string', default: 'sd15' }, 'num-processes': { type: 'string', default: '8' },
      overwrite: { type: 'boolean', default: false }, help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return void console.log(USAGE);
  if (!values.pairs || !values.out) throw new Error(`--pairs and --out are required\n${USAGE}`);
  const family = values.family as ScriptFamily;
  if (family !== 'sd15' && family !== 'sdxl') throw new Error(`--family must be sd15 or sdxl, got ${values.family}`);
  const numProcesses = positiveInt(values['num-processes'], 'num-processes')!;
  const shardRows = positiveInt(values['shard-rows'], 'shard-rows');
  const shardMb = positiveInt(values['shard-mb'], 'shard-mb');

  const opened = await openPairsSourceNode(values.pairs);
  let rows: AsyncIterable<DatasetRow>;
  let images: string;
  if ('json' in opened) {
    const file = rowsFromPairsJson(opened.json);
    rows = file.rows;
    images = `PNG at the pairs file's ${file.width}×${file.height}`;
  } else {
    rows = rowsFromEncodedPairs(opened.source);
    images = 'the source files\' own bytes (PNG, JPEG or WebP), at their own size: the script resizes and crops to --resolution';
  }

  const dataDir = join(values.out, 'data');
  mkdirSync(dataDir, { recursive: true });
  clearOldShards(dataDir, values.overwrite);
  const partial = (index: number) => join(dataDir, `.partial-${index}.parquet`); // outside the data/train-* pattern
  let counts: number[];
  try {
    counts = await writeDatasetShards(rows, {
      reverse: values.reverse, shardRows, shardBytes: shardMb === undefined ? undefined : shardMb * 1e6,
      openShard: (index) => fileWriter(partial(index)),
      onRow: (n) => { if (n % 100 === 0) process.stderr.write(`\r${n} pairs`); },
    });
  } catch (error) {
    for (const name of readdirSync(dataDir).filter((n) => n.startsWith('.partial-'))) rmSync(join(dataDir, name));
    throw error;
  } finally {
    if (!('json' in opened)) await opened.close();
  }
  counts.forEach((_, i) => renameSync(partial(i), join(values.out!, shardPath(i, counts.length))));

  const summary: DatasetSummary = {
    rows: counts.reduce((a, b) => a + b, 0), shards: counts.length, shardRows: counts, reverse: values.reverse,
    tiesDropped: 'json' in opened ? 0 : opened.source.ties(), source: `\`${values.pairs}\``, images,
  };
  const command = accelerateCommand({ family, datasetDir: values.out, numProcesses, settings: RELEASED_NPO_SETTINGS[family] });
  writeFileSync(join(values.out, 'README.md'), datasetCard(summary, command));
  process.stderr.write(`\rwrote ${summary.rows} pairs in ${summary.shards} shard${summary.shards === 1 ? '' : 's'}${values.reverse ? ', labels reversed (NPO)' : ''}`
    + `${summary.tiesDropped ? `, ${summary.tiesDropped} tie${summary.tiesDropped === 1 ? '' : 's'} left out` : ''}\n\ntrain with the released NPO settings (${family}):\n${command}\n`);
  console.log(values.out);
}

main().catch((error: unknown) => {
  console.error(`export-pairs: ${(error as Error).message}`);
  process.exit(1);
});
