// Prints one closing line for the whole test run ("Total: N passed, N failed, N skipped"), from the JSON reports that
// vitest (reports/unit.json) and Playwright (reports/e2e.json) write, after the browser tests' time per project and
// the machine's measured speed (reports/calibration.json). Exits non-zero if any test failed.
import { existsSync, readFileSync } from 'node:fs';

const read = (path) => (existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : undefined);
const minutes = (ms) => (ms / 60_000).toFixed(1);

/** Test time per Playwright project, so a growing suite shows where its time goes (playwright.config.ts decides). */
function perProject(report) {
  const total = new Map();
  const walk = (suite) => {
    for (const spec of suite.specs ?? []) for (const t of spec.tests) for (const r of t.results) total.set(t.projectName, (total.get(t.projectName) ?? 0) + r.duration);
    for (const child of suite.suites ?? []) walk(child);
  };
  report.suites.forEach(walk);
  return [...total].map(([name, ms]) => `${name} ${minutes(ms)}`).join(', ');
}
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
if (e2e) console.log(`browser tests took ${minutes(e2e.stats.duration)} min (${perProject(e2e)}; the rest: build, calibration)`);
const calibration = read('reports/calibration.json');
if (calibration) {
  const costs = Object.entries(calibration.backends).map(([name, c]) => `${name} ${(c.unetCallMs / 1000).toFixed(1)} s`).join(', ');
  console.log(`this machine at the start of the browser tests (load average ${calibration.loadAverage[0].toFixed(1)}): one UNet call of the embedded model ${costs}`);
}
console.log(`Total: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
process.exit(counts.failed > 0 || !unit || !e2e ? 1 : 0);
