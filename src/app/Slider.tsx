// A labelled range slider that shows its value while dragging and commits on release (the native `change` event),
// so a drag costs one full generation, not one per pixel moved; `onDrag` (optional) runs after each move's value is
// set, for a cheap live preview.
import { useEffect, useRef } from 'react';

interface SliderProps {
  label: string;
  testId: string;
  value: number;
  min: number;
  max: number;
  step: number;
  onInput(value: number): void;
  onCommit(): void;
  onDrag?(): void;
}

export function Slider({ label, testId, value, min, max, step, onInput, onCommit, onDrag }: SliderProps) {
  const ref = useRef<HTMLInputElement>(null);
  const commit = useRef(onCommit);
  commit.current = onCommit;
  useEffect(() => {
    const input = ref.current!;
    const listener = () => commit.current();
    input.addEventListener('change', listener);
    return () => input.removeEventListener('change', listener);
  }, []);
  return (
    <label className="slider">
      <span>{label}</span>
      <input ref={ref} type="range" data-testid={testId} min={min} max={max} step={step} value={value}
        onChange={(e) => (onInput(Number(e.target.value)), onDrag?.())} />
      <output data-testid={`${testId}-value`}>{value.toFixed(2)}</output>
    </label>
  );
}
