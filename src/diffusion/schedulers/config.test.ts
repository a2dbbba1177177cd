// parseSchedulerConfig on diffusers-written files (Python json.dumps with its non-finite tokens) and bad input.
import { describe, expect, it } from 'vitest';
import { parseSchedulerConfig } from './config.ts';
import { createScheduler, schedulerNameForConfig } from './index.ts';

// As diffusers' DPMSolverMultistepScheduler.save_config writes it (json.dumps, indent 2, sorted keys).
const DPM_JSON = `{
  "_class_name": "DPMSolverMultistepScheduler",
  "_diffusers_version": "0.30.0",
  "algorithm_type": "dpmsolver++",
  "beta_end": 0.012,
  "beta_schedule": "scaled_linear",
  "beta_start": 0.00085,
  "dynamic_thresholding_ratio": 0.995,
  "euler_at_final": false,
  "final_sigmas_type": "zero",
  "lambda_min_clipped": -Infinity,
  "lower_order_final": true,
  "num_train_timesteps": 1000,
  "prediction_type": "epsilon",
  "sample_max_value": 1.0,
  "solver_order": 2,
  "solver_type": "midpoint",
  "steps_offset": 1,
  "thresholding": false,
  "timestep_spacing": "linspace",
  "trained_betas": null,
  "use_karras_sigmas": false,
  "variance_type": null,
  "note": "strings keep \\"Infinity\\" and NaN as text"
}`;

describe('parseSchedulerConfig', () => {
  it('reads Python non-finite tokens outside strings only', () => {
    const c = parseSchedulerConfig(DPM_JSON);
    expect(c.lambda_min_clipped).toBe(-Infinity);
    expect(c.note).toBe('strings keep "Infinity" and NaN as text');
    expect(schedulerNameForConfig(c)).toBe('dpm++2m');
    const s = createScheduler('dpm++2m', c);
    s.setTimesteps(25);
    expect(s.timesteps[0]).toBe(999);
    expect(parseSchedulerConfig('{"a": NaN, "b": [Infinity]}').a).toBeNaN();
  });

  it('rejects what is not one JSON object', () => {
    expect(() => parseSchedulerConfig('[1, 2]')).toThrow(/JSON object/);
    expect(() => parseSchedulerConfig('null')).toThrow(/JSON object/);
    expect(() => parseSchedulerConfig('{"a": }')).toThrow(/not valid JSON/);
    expect(() => parseSchedulerConfig('x'.repeat((1 << 20) + 1))).toThrow(/refused: it is 1048577 characters long/);
  });
});
