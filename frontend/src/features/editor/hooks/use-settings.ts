/** The settings panel's values, persisted: generation settings and suggest-on-pause, with a reset to the defaults. */
import { useCallback } from 'react';
import { STORAGE_KEYS } from '@/config/app';
import { DEFAULT_SETTINGS, SETTING_BOUNDS, type GenerationSettings } from '@/config/generation';
import { DEFAULT_SUGGEST_ON_PAUSE, PAUSE_DELAY_BOUNDS, type SuggestOnPause } from '@/config/suggest-on-pause';
import { useStoredState } from './use-stored-state';

function inRange(value: unknown, bounds: { min: number; max: number }): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= bounds.min && value <= bounds.max;
}

/** Accepts stored settings field by field; anything out of bounds takes its default. */
export function parseSettings(raw: unknown): GenerationSettings | null {
  if (!raw || typeof raw !== 'object') return null;
  const stored = raw as Record<string, unknown>;
  const pick = <K extends 'maxNewTokens' | 'temperature' | 'topP' | 'alternatives'>(key: K): number =>
    inRange(stored[key], SETTING_BOUNDS[key]) ? (stored[key] as number) : DEFAULT_SETTINGS[key];
  const seed = stored.seed;
  return {
    maxNewTokens: Math.round(pick('maxNewTokens')),
    temperature: pick('temperature'),
    topP: pick('topP'),
    alternatives: Math.round(pick('alternatives')),
    seed: Number.isSafeInteger(seed) && inRange(seed, SETTING_BOUNDS.seed) ? (seed as number) : null,
  };
}

export function parseSuggestOnPause(raw: unknown): SuggestOnPause | null {
  if (!raw || typeof raw !== 'object') return null;
  const stored = raw as Record<string, unknown>;
  return {
    enabled: typeof stored.enabled === 'boolean' ? stored.enabled : DEFAULT_SUGGEST_ON_PAUSE.enabled,
    delayMs: inRange(stored.delayMs, PAUSE_DELAY_BOUNDS) ? Math.round(stored.delayMs) : DEFAULT_SUGGEST_ON_PAUSE.delayMs,
  };
}

export function useSettings() {
  const [settings, setSettings] = useStoredState(STORAGE_KEYS.settings, parseSettings, DEFAULT_SETTINGS);
  const [pause, setPause] = useStoredState(STORAGE_KEYS.suggestOnPause, parseSuggestOnPause, DEFAULT_SUGGEST_ON_PAUSE);
  const updateSetting = useCallback(
    <K extends keyof GenerationSettings>(key: K, value: GenerationSettings[K]) => setSettings((previous) => ({ ...previous, [key]: value })),
    [setSettings],
  );
  const updatePause = useCallback(
    <K extends keyof SuggestOnPause>(key: K, value: SuggestOnPause[K]) => setPause((previous) => ({ ...previous, [key]: value })),
    [setPause],
  );
  const resetSettings = useCallback(() => {
    setSettings(DEFAULT_SETTINGS);
    setPause(DEFAULT_SUGGEST_ON_PAUSE);
  }, [setSettings, setPause]);
  return { settings, updateSetting, pause, updatePause, resetSettings };
}
