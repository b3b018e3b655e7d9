import { describe, expect, it } from 'vitest';
import { DEFAULT_SUGGEST_ON_PAUSE, PAUSE_DELAY_BOUNDS } from '@/config/suggest-on-pause';
import { parseSuggestOnPause } from './use-settings';

describe('parseSuggestOnPause', () => {
  it('keeps valid stored values and replaces the rest field by field with the defaults', () => {
    expect(parseSuggestOnPause({ enabled: false, delayMs: 700 })).toEqual({ enabled: false, delayMs: 700 });
    expect(parseSuggestOnPause({ enabled: 'yes', delayMs: PAUSE_DELAY_BOUNDS.max + 1 })).toEqual(DEFAULT_SUGGEST_ON_PAUSE);
    expect(parseSuggestOnPause({ enabled: false, delayMs: Number.NaN })).toEqual({ enabled: false, delayMs: DEFAULT_SUGGEST_ON_PAUSE.delayMs });
    expect(parseSuggestOnPause('on')).toBeNull();
  });
});
