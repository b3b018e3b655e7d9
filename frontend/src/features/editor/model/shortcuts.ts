/** How the keyboard help and the toolbar's tooltips name the shortcut modifier: ⌘ on Apple devices, Ctrl elsewhere. */
const isApple = typeof navigator !== 'undefined' && /Mac|iPhone|iPad/.test(navigator.platform);

export const SHORTCUT_MODIFIER = isApple ? '⌘' : 'Ctrl';
