// The guided first run (steps in tour.ts): a small non-modal card at the bottom of the window, on the side away from
// the part of the page it points at, which is outlined and scrolled into view. The page stays usable underneath. Focus
// moves to the card's main button when it opens and goes back where it was when it closes; Esc closes it first
// (before the page's own Esc, which cancels a generation).
import { useEffect, useRef, useState } from 'react';
import { create } from 'zustand';
import { rememberTourDismissed, TOUR_STEPS, tourDismissed } from './tour.ts';

interface TourState {
  /** The step shown (0-based), undefined while closed. */
  step?: number;
  open(): void;
  close(): void;
  go(step: number): void;
}

/** What had focus when the tour opened, to give it back on close. */
let returnFocus: HTMLElement | null = null;

export const useTour = create<TourState>()((set) => ({
  open() {
    returnFocus = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    set({ step: 0 });
  },
  close() {
    rememberTourDismissed();
    set({ step: undefined });
    const back = returnFocus?.isConnected && returnFocus !== document.body ? returnFocus : document.querySelector<HTMLElement>('[data-testid=tour-link]');
    back?.focus();
  },
  go: (step) => set({ step: Math.max(0, Math.min(TOUR_STEPS.length - 1, step)) }),
}));

/** Offered once per page load (React StrictMode runs effects twice). */
let offered = false;

/** Opens the tour when the page is first ready, unless it was closed on an earlier visit. */
export function useFirstRunTour(ready: boolean) {
  useEffect(() => {
    if (!ready || offered) return;
    offered = true;
    if (!tourDismissed()) useTour.getState().open();
  }, [ready]);
}

export function Tour() {
  const { step, close, go } = useTour();
  const main = useRef<HTMLButtonElement>(null);
  const [side, setSide] = useState<'left' | 'right'>('right');
  const current = step === undefined ? undefined : TOUR_STEPS[step];

  // Point at the step's part of the page, and sit on the other side of the window from it.
  useEffect(() => {
    if (!current) return;
    const target = document.querySelector<HTMLElement>(`[data-tour="${current.target}"]`);
    if (target) {
      target.classList.add('tour-target');
      target.scrollIntoView({ block: 'nearest' });
      const box = target.getBoundingClientRect();
      setSide(box.left + box.width / 2 > window.innerWidth / 2 ? 'left' : 'right');
    }
    main.current?.focus();
    return () => target?.classList.remove('tour-target');
  }, [current]);

  useEffect(() => {
    if (!current) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== 'Escape') return;
      e.preventDefault();
      e.stopPropagation();
      close();
    };
    window.addEventListener('keydown', onKey, { capture: true });
    return () => window.removeEventListener('keydown', onKey, { capture: true });
  }, [current, close]);

  if (!current || step === undefined) return null;
  const last = step === TOUR_STEPS.length - 1;
  return (
    <section className={`tour ${side}`} role="dialog" aria-modal="false" aria-labelledby="tour-title" aria-describedby="tour-text"
      data-testid="tour" data-step={step + 1} data-target={current.target}>
      <p className="tour-count">Tour · {step + 1} of {TOUR_STEPS.length}</p>
      <h2 id="tour-title">{current.title}</h2>
      <p id="tour-text" aria-live="polite">{current.text}</p>
      <div className="row">
        <button type="button" data-testid="tour-back" disabled={step === 0} onClick={() => go(step - 1)}>Back</button>
        <button type="button" data-testid="tour-next" ref={main} onClick={() => (last ? close() : go(step + 1))}>{last ? 'Done' : 'Next'}</button>
        <button type="button" data-testid="tour-close" className="tour-close" aria-label="close the tour" title="close the tour (Esc)" onClick={close}>×</button>
      </div>
    </section>
  );
}
