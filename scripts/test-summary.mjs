// Prints one closing line for the whole test run ("Total: N passed, N failed, N skipped"), from the JSON reports that
// vitest (reports/unit.json) and Playwright (reports/e2e.json) write. Exits non-zero if any test failed.
import { existsSync, readFileSync } from 'node:fs';

const read = (path) => (existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : undefined);
const unit = read('reports/unit.json');
const e2e = read('reports/e2e.json');
const counts = { passed: 0, failed: 0, skipped: 0 };
if (unit) {
  counts.passed += unit.numPassedTests;
  counts.failed += unit.numFailedTests;
  counts.skipped += unit.numPendingTests + (unit.numTodoTests ?? 0);
}
if (e2e) {
  counts.passed += e2e.stats.expected + (e2e.stats.flaky ?? 0);
  counts.failed += e2e.stats.unexpected;
  counts.skipped += e2e.stats.skipped;
}
console.log(`unit tests: ${unit ? `${unit.numPassedTests} passed, ${unit.numFailedTests} failed` : 'no report'}; browser tests: ${e2e ? `${e2e.stats.expected} passed, ${e2e.stats.unexpected} failed` : 'no report'}`);
console.log(`Total: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
process.exit(counts.failed > 0 || !unit || !e2e ? 1 : 0);
