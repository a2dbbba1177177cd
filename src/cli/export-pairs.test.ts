// `npm run export-pairs` as a user runs it: the folder layout the Hub and datasets read (README.md + data/ shards,
// no partial files left), the card, and old shards refused (they would join the new ones under data/train-*).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const exportPairs = (args: string[]) => execFileSync('npx', ['tsx', 'src/cli/export-pairs.ts', ...args], { stdio: 'pipe', encoding: 'utf8' });

describe('npm run export-pairs', () => {
  it('writes README.md and one shard per row with --shard-rows 1, and says where', () => {
    const out = mkdtempSync(join(tmpdir(), 'export-'));
    const stdout = exportPairs(['--pairs', 'fixtures/pair-sources/pairs.zip', '--out', out, '--reverse', '--shard-rows', '1']);
    expect(stdout.trim().split('\n').at(-1)).toBe(out);
    expect(readdirSync(out).sort()).toEqual(['README.md', 'data']);
    expect(readdirSync(join(out, 'data')).sort()).toEqual(['train-00000-of-00002.parquet', 'train-00001-of-00002.parquet']);
    const card = readFileSync(join(out, 'README.md'), 'utf8');
    expect(card).toContain('path: data/train-*');
    expect(card).toContain(`--dataset_name ${out}`);
  });

  it('refuses to write beside old shards unless --overwrite, and then replaces them', () => {
    const out = mkdtempSync(join(tmpdir(), 'export-'));
    exportPairs(['--pairs', 'fixtures/pair-sources/pickapic.parquet', '--out', out, '--shard-rows', '1']);
    expect(() => exportPairs(['--pairs', 'fixtures/pair-sources/pickapic.parquet', '--out', out])).toThrow(/already holds train-00000-of-00002\.parquet.*--overwrite/s);
    exportPairs(['--pairs', 'fixtures/pair-sources/pickapic.parquet', '--out', out, '--overwrite']);
    expect(readdirSync(join(out, 'data'))).toEqual(['train-00000-of-00001.parquet']);
  });

  it('fails on a broken source with the reader\'s message before writing anything', () => {
    const out = mkdtempSync(join(tmpdir(), 'export-'));
    const broken = join(out, 'pairs.json');
    writeFileSync(broken, '{"version": 1, "width": 4, "height": 4, "pairs": [{"prompt": "x", "preferred": "c", "a": {}, "b": {}}]}');
    expect(() => exportPairs(['--pairs', broken, '--out', join(out, 'ds')])).toThrow(/pair 0: "preferred" must be "a" or "b"/);
    expect(existsSync(join(out, 'ds'))).toBe(false);
  });
});
