/** The seed field's text: what it means as a seed, and what it shows for one. */
import { SETTING_BOUNDS } from '@/config/generation';

/** Empty = no seed; otherwise a whole number in bounds; anything else is an error message. */
export function parseSeedInput(raw: string): { seed: number | null } | { error: string } {
  const text = raw.trim();
  if (text === '') return { seed: null };
  const seed = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(seed)) {
    return { error: `Seed must be a whole number from 0 to ${SETTING_BOUNDS.seed.max}, or empty.` };
  }
  return { seed };
}

export function seedInputText(seed: number | null): string {
  return seed === null ? '' : String(seed);
}

/** The field keeps what the writer typed while it still means `seed` ("007" for 7); otherwise it shows `seed`. */
export function seedInputFor(seed: number | null, typed: string): string {
  const parsed = parseSeedInput(typed);
  return 'seed' in parsed && parsed.seed === seed ? typed : seedInputText(seed);
}
