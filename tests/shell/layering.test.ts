import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

/** The layering rules in eslint.config.js, checked on small snippets placed (virtually) in each folder. */
const eslint = new ESLint({ cwd: process.cwd() });

async function restricted(code: string, filePath: string): Promise<string[]> {
  const [r] = await eslint.lintText(code, { filePath });
  return r!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('layering lint rules', () => {
  it('lets only the shell, main/index.ts and the preload import electron', async () => {
    const code = "import { app } from 'electron';\nexport const a = app;\n";
    expect(await restricted(code, 'src/main/shell/x.ts')).toEqual([]);
    expect(await restricted(code, 'src/main/index.ts')).toEqual([]);
    expect(await restricted(code, 'src/preload/x.ts')).toEqual([]);
    expect(await restricted(code, 'src/main/kiosk/x.ts')).toHaveLength(1);
    expect(await restricted(code, 'src/main/recorder/x.ts')).toHaveLength(1);
    expect(await restricted(code, 'src/renderer/src/x.tsx')).toHaveLength(1);
    expect(await restricted(code, 'src/shared/x.ts')).toHaveLength(1);
  });

  it('keeps Node modules and main-process code out of the renderer', async () => {
    expect(await restricted("import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n", 'src/renderer/src/x.ts')).toHaveLength(1);
    expect(await restricted("import { readFileSync } from 'fs';\nexport const r = readFileSync;\n", 'src/renderer/src/x.ts')).toHaveLength(1);
    expect(await restricted("import { KioskService } from '../../main/kiosk/service.js';\nexport const k = KioskService;\n", 'src/renderer/src/x.ts')).toHaveLength(1);
    expect(await restricted("import { BRIDGE_VERSION } from '../../shared/bridge.js';\nexport const v = BRIDGE_VERSION;\n", 'src/renderer/src/x.ts')).toEqual([]);
    expect(await restricted("import i18next from 'i18next';\nexport const i = i18next;\n", 'src/renderer/src/x.ts')).toEqual([]);
  });

  it('keeps src/shared free of Node and main code', async () => {
    expect(await restricted("import { join } from 'node:path';\nexport const j = join;\n", 'src/shared/x.ts')).toHaveLength(1);
    expect(await restricted("import { KuzetError } from '../main/core/errors.js';\nexport const e = KuzetError;\n", 'src/shared/x.ts')).toHaveLength(1);
  });
});
