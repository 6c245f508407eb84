import { describe, expect, it } from 'vitest';
import { formatEta, progressLine } from '../../src/main/upload/messages.js';
import type { UploadProgress } from '../../src/main/upload/spool.js';

const base: UploadProgress = {
  bytesDone: 12 * 1024 * 1024, bytesTotal: 24 * 1024 * 1024, filesDone: 7, filesTotal: 12, filesRejected: 0,
  rateBps: 3 * 1024 * 1024, etaSeconds: 4, active: [], retrying: null,
};

describe('upload progress line', () => {
  it('shows bar, percentage, bytes, files, rate and ETA', () => {
    expect(progressLine(base, 'en', 10)).toBe('Uploading [#####-----]  50%  12.0 MB/24.0 MB  7/12 files  3.0 MB/s  ETA 0:04');
  });

  it('leaves the rate out while it is unknown, instead of printing 0 B/s', () => {
    const line = progressLine({ ...base, rateBps: 0, etaSeconds: null }, 'en', 10);
    expect(line).toBe('Uploading [#####-----]  50%  12.0 MB/24.0 MB  7/12 files  ETA --:--');
    expect(line).not.toContain('B/s');
  });

  it('speaks Kazakh and Russian, and names the file being retried', () => {
    expect(progressLine(base, 'kk', 10)).toMatch(/^Жүктеу \[#####-----\] {2}50% .* 7\/12 файл {2}3\.0 MB\/s {2}қалды 0:04$/);
    const ru = progressLine({ ...base, retrying: 'media/face/seg-00003.ts: ECONNRESET' }, 'ru', 10);
    expect(ru).toMatch(/^Загрузка .* осталось 0:04 {2}\(повтор: media\/face\/seg-00003\.ts: ECONNRESET\)$/);
  });

  it('formats long ETAs with hours', () => {
    expect(formatEta(3 * 3600 + 5 * 60 + 7)).toBe('3:05:07');
    expect(formatEta(65)).toBe('1:05');
  });
});
