/** React state mirrored to localStorage, read back through a validator so stale or corrupt data falls back to defaults. */
import { useCallback, useEffect, useState } from 'react';

export function readStored<T>(key: string, parse: (raw: unknown) => T | null, fallback: T): T {
  try {
    const raw = window.localStorage.getItem(key);
    if (raw === null) return fallback;
    return parse(JSON.parse(raw)) ?? fallback;
  } catch {
    return fallback;
  }
}

export function writeStored(key: string, value: unknown): void {
  try {
    window.localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Private mode or a full quota: the app keeps working, only persistence is lost.
  }
}

export function useStoredState<T>(
  key: string,
  parse: (raw: unknown) => T | null,
  fallback: T,
): [T, (update: T | ((previous: T) => T)) => void] {
  const [value, setValue] = useState<T>(() => readStored(key, parse, fallback));
  useEffect(() => writeStored(key, value), [key, value]);
  const update = useCallback((next: T | ((previous: T) => T)) => setValue(next), []);
  return [value, update];
}
