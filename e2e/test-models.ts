// Model directories the e2e tests load besides the embedded one. They are prepared from the committed real-exporter
// fixtures by e2e/prepare-test-models.ts (Playwright's global setup) into tmp/test-models/, which the dev and preview
// servers serve at /test-models/ (vite.config.ts); nothing of it is committed or built into dist/.
export const SD15_TEST_MODEL = 'tmp/test-models/sd15-tiny';
export const SD15_TEST_MODEL_URL = '/test-models/sd15-tiny/';
export const SDXL_TEST_MODEL = 'tmp/test-models/sdxl-tiny';
export const SDXL_TEST_MODEL_URL = '/test-models/sdxl-tiny/';
