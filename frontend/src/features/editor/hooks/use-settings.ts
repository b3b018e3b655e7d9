/** The generation settings, persisted, with a reset to the defaults. */
import { useCallback } from 'react';
import { STORAGE_KEYS } from '@/config/app';
import { DEFAULT_SETTINGS, SETTING_BOUNDS, type GenerationSettings } from '@/config/generation';
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

export function useSettings() {
  const [settings, setSettings] = useStoredState(STORAGE_KEYS.settings, parseSettings, DEFAULT_SETTINGS);
  const updateSetting = useCallback(
    <K extends keyof GenerationSettings>(key: K, value: GenerationSettings[K]) => setSettings((previous) => ({ ...previous, [key]: value })),
    [setSettings],
  );
  const resetSettings = useCallback(() => setSettings(DEFAULT_SETTINGS), [setSettings]);
  return { settings, updateSetting, resetSettings };
}
