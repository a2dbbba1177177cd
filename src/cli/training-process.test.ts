// The re-run of a training command under TRAINING_MALLOC_ENV: the same arguments, the setting in its environment, gc()
// exposed, its exit status passed on, and no second re-run.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { TRAINING_MALLOC_ENV } from './training-process.ts';

const root = join(import.meta.dirname, '../..');

describe('rerunForTraining', () => {
  it.runIf(process.platform === 'linux')('runs the command once more with the setting and passes its exit status on', async () => {
    const script = join(mkdtempSync(join(tmpdir(), 'malloc-')), 'probe.ts');
    writeFileSync(script, [
      `import { rerunForTraining } from ${JSON.stringify(join(root, 'src/cli/training-process.ts'))};`,
      'const rerun = rerunForTraining();',
      'if (rerun !== null) { console.log(`parent saw ${rerun}`); process.exit(rerun); }',
      'console.log(`child ${typeof globalThis.gc} ${process.env.MALLOC_MMAP_THRESHOLD_} ${process.argv.slice(2).join(" ")}`);',
      'process.exit(Number(process.argv[2]));',
    ].join('\n'));
    const env = { ...process.env };
    for (const key of Object.keys(TRAINING_MALLOC_ENV)) delete env[key];
    const run = await promisify(execFile)(join(root, 'node_modules/.bin/tsx'), [script, '0', 'two words'], { env }).catch((e) => e);
    expect(run.stdout).toMatch(new RegExp(`^child function ${TRAINING_MALLOC_ENV.MALLOC_MMAP_THRESHOLD_} 0 two words\\nparent saw 0\\n$`));
    const failing = await promisify(execFile)(join(root, 'node_modules/.bin/tsx'), [script, '3'], { env }).catch((e) => e);
    expect(failing.code).toBe(3);
    expect(failing.stdout).toMatch(/parent saw 3/);
  });
});
