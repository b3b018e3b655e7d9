/**
 * Which shaded model token the pointer is over, in the confidence view. The mirror that draws the
 * tokens lies under the textarea, so the pointer is resolved by hit-testing the mirror's token spans.
 */
import { useState, type MouseEvent, type RefObject } from 'react';

/** The token under the pointer: its probability (null if unknown), its text and where it is drawn. */
export type TokenHover = { probability: number | null; text: string; rect: DOMRect };

function contains(rect: DOMRect, x: number, y: number): boolean {
  return x >= rect.left && x <= rect.right && y >= rect.top && y <= rect.bottom;
}

export function useTokenHover(mirrorRef: RefObject<HTMLElement | null>, enabled: boolean) {
  const [hover, setHover] = useState<TokenHover | null>(null);

  const onMouseMove = (event: MouseEvent<HTMLElement>) => {
    if (!enabled || !mirrorRef.current) return;
    for (const element of mirrorRef.current.querySelectorAll<HTMLElement>('[data-model-token]')) {
      for (const rect of element.getClientRects()) {
        if (contains(rect, event.clientX, event.clientY)) {
          const raw = element.dataset.probability;
          if (hover?.rect.left !== rect.left || hover.rect.top !== rect.top) {
            setHover({ probability: raw ? Number(raw) : null, text: element.textContent ?? '', rect });
          }
          return;
        }
      }
    }
    if (hover) setHover(null);
  };

  return { hover, onMouseMove, onMouseLeave: () => setHover(null) };
}
