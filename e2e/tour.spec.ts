// The guided first run (issue 31, item 4): a first visit shows a four-step tour pointing at the images and the wipe,
// the α/β sliders, the sweep's heat map, and picks and training; it is keyboard driven (focus on its button, Esc
// closes it before the page's own Esc), leaves the page usable underneath, gives focus back when it closes, and does
// not come back once closed; the "Tour" link opens it again. Every other spec opens the page as a returning visitor
// (playwright.config.ts's storageState); this one starts with empty storage. WASM only: page logic.
import { expect, test, type Page } from '@playwright/test';
import { TOUR_STEPS } from '../src/app/tour.ts';
import { backendOf, setNumber, waitIdle } from './helpers.ts';

test.use({ storageState: { cookies: [], origins: [] } });
test.beforeEach(({}, info) => test.skip(backendOf(info) === 'webgpu', 'page logic; covered on wasm'));

/** The tour is at `step` (1-based): its card says so and its part of the page, and only that one, is outlined. */
async function expectStep(page: Page, step: number) {
  const tour = page.getByTestId('tour');
  await expect(tour).toHaveAttribute('data-step', String(step));
  await expect(tour).toContainText(TOUR_STEPS[step - 1].title);
  await expect(page.locator('.tour-target')).toHaveCount(1);
  await expect(page.locator(`[data-tour="${TOUR_STEPS[step - 1].target}"]`)).toHaveClass(/tour-target/);
}

test('a first visit gets the tour; it walks four parts of the page by keyboard, stays out of the way, and is not shown again', async ({ page }, info) => {
  await page.goto('/?backend=wasm&steps=2');
  await waitIdle(page, info, { load: true, steps: 2 });
  const tour = page.getByTestId('tour');
  await expect(tour).toBeVisible();
  await expect(tour).toHaveAttribute('role', 'dialog');
  await expectStep(page, 1);
  await expect(page.getByTestId('tour-next')).toBeFocused();

  // The page's own controls work while it is open: a new seed generates.
  await setNumber(page, 'seed', 5);
  await waitIdle(page, info);
  await expect(page.getByTestId('status')).toContainText('seed 5');

  // Keyboard only: Enter on the focused button steps on; Shift+Tab reaches Back.
  await page.getByTestId('tour-next').focus();
  for (const step of [2, 3, 4]) {
    await page.keyboard.press('Enter');
    await expectStep(page, step);
    await expect(page.getByTestId('tour-next')).toBeFocused();
  }
  await expect(page.getByTestId('tour-next')).toHaveText('Done');
  await page.keyboard.press('Shift+Tab');
  await expect(page.getByTestId('tour-back')).toBeFocused();
  await page.keyboard.press('Enter');
  await expectStep(page, 3);

  // Esc closes the tour first: a running generation goes on (the page's Esc would cancel it).
  await setNumber(page, 'steps', 200);
  await expect(page.locator('main')).toHaveAttribute('data-status', 'generating');
  await page.keyboard.press('Escape');
  await expect(tour).toBeHidden();
  await expect(page.locator('.tour-target')).toHaveCount(0);
  await expect(page.locator('main')).toHaveAttribute('data-status', 'generating');
  await page.keyboard.press('Escape'); // now the page's: cancel
  await waitIdle(page, info, { steps: 3 });
  await setNumber(page, 'steps', 2); // the URL keeps the steps: the reload below makes 2, not 200
  await waitIdle(page, info);

  // Closed once, it stays closed; the Tour link brings it back, and closing gives focus back to the link.
  await page.reload();
  await waitIdle(page, info, { load: true });
  await expect(tour).toBeHidden();
  await page.getByTestId('tour-link').click();
  await expectStep(page, 1);
  await expect(page.getByTestId('tour-next')).toBeFocused();
  await page.getByTestId('tour-close').click();
  await expect(tour).toBeHidden();
  await expect(page.getByTestId('tour-link')).toBeFocused();
});
