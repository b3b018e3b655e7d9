/**
 * A full garbage collection on demand, so a test can put the collector at the worst moment
 * instead of leaving it to chance (and to how loaded the machine is).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
// A fresh context created after the flag is set gets the `gc` global.
const gc = runInNewContext('gc') as () => void;

export function collectGarbage(): void {
  gc();
}
