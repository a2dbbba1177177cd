// The guided first run: four short steps, each pointing at a part of the page (an element with `data-tour="<target>"`).
// Shown once, on the first open, and again from the header's "Tour" link; closing it (its button, Esc, or the last
// step's Done) is remembered in localStorage, so it does not come back on its own. Tour.tsx draws it.

export interface TourStep {
  /** The `data-tour` value of the element the step points at. */
  target: string;
  title: string;
  text: string;
}

export const TOUR_STEPS: readonly TourStep[] = [
  {
    target: 'images',
    title: 'The two images',
    text: 'One prompt and seed, without NPO (left) and with NPO (right); the line under them says what is compared and '
      + 'how often NPO won on held-out prompts. "Wipe" lays one over the other: drag the divider, or focus it and use the arrow keys.',
  },
  {
    target: 'sliders',
    title: 'α and β, live',
    text: 'β weighs δ, NPO\'s offset, on the negative branch; α weighs η there when "η (DPO) on both branches" is on. '
      + 'While you drag a slider, the image it changes previews at a quarter of the steps; release it for the full image.',
  },
  {
    target: 'sweep',
    title: 'The α×β sweep',
    text: 'A grid of settings (α, β or ω on each axis): every cell is the image with NPO at that setting, coloured by its '
      + 'reward as a heat map, with the best cell outlined and named.',
  },
  {
    target: 'train',
    title: 'Pick, then train',
    text: '"Better" under an image (or the key 1 or 2) records which of the two you prefer. The training panel trains a δ '
      + 'on your picks (NPO reverses them) and shows what it changes, before and after.',
  },
];

/** localStorage key and value that mark the tour as seen (the e2e suite sets them in playwright.config.ts). */
export const TOUR_STORAGE_KEY = 'npo-playground.tour';
export const TOUR_DISMISSED = 'dismissed';

/** Whether the tour was closed before (storage that cannot be read counts as not: the tour then shows each visit). */
export function tourDismissed(): boolean {
  try {
    return localStorage.getItem(TOUR_STORAGE_KEY) === TOUR_DISMISSED;
  } catch {
    return false;
  }
}

export function rememberTourDismissed(): void {
  try {
    localStorage.setItem(TOUR_STORAGE_KEY, TOUR_DISMISSED);
  } catch {
    // storage refused (private mode, quota): the tour only comes back on the next visit
  }
}
