// Prints the adapter that WEBGPU_DROPOUT_ADAPTER selects, or exits 1 when there is none.
// Plain JS on purpose: the set-up script runs it before anything is built.
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';

const choice = process.env.WEBGPU_DROPOUT_ADAPTER || 'lavapipe';
if (choice === 'lavapipe') {
  const dir = '/usr/share/vulkan/icd.d';
  const icd = existsSync(dir) && readdirSync(dir).find((f) => /^lvp_icd.*\.json$/.test(f));
  if (!icd) process.exit(1);
  process.env.VK_ICD_FILENAMES = process.env.VK_DRIVER_FILES = `${dir}/${icd}`;
}
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const { create } = createRequire(import.meta.url)('webgpu');
const adapter = await create([]).requestAdapter();
if (!adapter) process.exit(1);
const i = adapter.info;
console.log([i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' / ') || 'adapter found');
process.exit(0);
