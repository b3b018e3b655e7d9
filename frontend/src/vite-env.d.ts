/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** Where the API is served; empty or unset means the page's own origin. */
  readonly VITE_API_BASE_URL?: string;
}
