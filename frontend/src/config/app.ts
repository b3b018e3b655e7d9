/** App-wide constants: where the API lives, storage keys and polling intervals. */

/** Empty = same origin (Flask serves the built editor; `npm run dev` proxies the API). */
export const API_BASE_URL: string = import.meta.env.VITE_API_BASE_URL ?? '';

export const HEALTH_POLL_MS = 30_000;
/** While the server is down or not yet answering: poll often, to notice it recover. */
export const HEALTH_RETRY_MS = 5_000;

// Versioned so a future change of the stored shape starts from defaults instead of crashing.
export const STORAGE_KEYS = {
  draft: 'abstract-autocomplete:draft:v1',
  settings: 'abstract-autocomplete:settings:v1',
  confidenceView: 'abstract-autocomplete:confidence-view:v1',
  suggestOnPause: 'abstract-autocomplete:suggest-on-pause:v1',
} as const;
