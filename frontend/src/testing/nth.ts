/** Reads a recorded list by position in a test, failing with what was missing instead of a TypeError later on. */
export function nth<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new Error(`expected an item at index ${index}, but there are ${items.length}`);
  return item;
}
