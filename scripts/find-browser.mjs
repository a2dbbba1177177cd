// Runs before the browser tests: makes sure a Chromium exists. $CHROMIUM_PATH or Debian's /usr/bin/chromium are used
// as they are (no download, as on CI); otherwise Playwright's own Chromium is installed (needs internet once).
import { existsSync } from 'node:fs';
import { execSync } from 'node:child_process';

const chosen = process.env.CHROMIUM_PATH || (existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : '');
if (chosen) {
  if (!existsSync(chosen)) throw new Error(`CHROMIUM_PATH=${chosen} does not exist`);
  console.log(`browser tests use ${chosen}`);
} else {
  console.log('no CHROMIUM_PATH and no /usr/bin/chromium: installing Playwright\'s Chromium');
  execSync('npx playwright install chromium', { stdio: 'inherit' });
}
