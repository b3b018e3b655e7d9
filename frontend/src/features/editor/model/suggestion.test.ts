import { describe, expect, it } from 'vitest';
import { nth } from '@/testing/nth';
import {
  addToken,
  cycleAlternative,
  finishSuggestion,
  followTyping,
  ghostText,
  hasAnyText,
  nextWordLength,
  spansForRange,
  startSuggestion,
  takeCharacters,
  type Suggestion,
} from './suggestion';

function streamed(anchor: number, alternatives: string[][], logprob = -1, lead = ''): Suggestion {
  let suggestion = startSuggestion(anchor, alternatives.length, lead);
  alternatives.forEach((tokens, index) => {
    for (const text of tokens) suggestion = addToken(suggestion, index, { text, logprob });
  });
  return suggestion;
}

describe('nextWordLength', () => {
  it.each([
    [' the model learns', ' the'.length],
    ['model learns', 'model'.length],
    ['.\n\nWe show', '.'.length],
    ['\n\nWe show', '\n\nWe'.length],
    ['   ', 3],
    ['', 0],
  ])('%j -> %i', (ghost, length) => {
    expect(nextWordLength(ghost)).toBe(length);
  });
});

describe('taking the suggestion', () => {
  it('takes a word at a time, moving the anchor, until nothing is left', () => {
    let suggestion: Suggestion | null = finishSuggestion(streamed(5, [[' deep', ' nets', '.']]), [{ text: ' deep nets.', finishReason: 'eos' }]);
    const taken: string[] = [];
    while (suggestion) {
      const step: ReturnType<typeof takeCharacters> = takeCharacters(suggestion, nextWordLength(ghostText(suggestion)));
      taken.push(`${step.at}:${step.inserted}`);
      suggestion = step.next;
    }
    expect(taken).toEqual(['5: deep', '10: nets.']);
  });

  it('keeps a streaming suggestion alive when everything so far was taken', () => {
    const step = takeCharacters(streamed(0, [[' a']]), 2);
    expect(step.inserted).toBe(' a');
    expect(step.next).toMatchObject({ anchor: 2, consumed: 2, streaming: true });
    expect(ghostText(addToken(step.next!, 0, { text: ' b', logprob: -1 }))).toBe(' b');
  });

  it('gives each accepted token its own span with its log-probability', () => {
    let suggestion = startSuggestion(3, 1);
    suggestion = addToken(suggestion, 0, { text: ' we', logprob: -0.1 });
    suggestion = addToken(suggestion, 0, { text: ' show', logprob: -2.5 });
    const step = takeCharacters(suggestion, 8);
    expect(step.spans).toEqual([
      { start: 3, end: 6, text: ' we', logprob: -0.1 },
      { start: 6, end: 11, text: ' show', logprob: -2.5 },
    ]);
  });

  it('merges the log-probability of a token that ended inside a character into the next one', () => {
    let suggestion = startSuggestion(0, 1);
    suggestion = addToken(suggestion, 0, { text: '', logprob: -1 });
    suggestion = addToken(suggestion, 0, { text: '🙂', logprob: -0.5 });
    expect(spansForRange(nth(suggestion.alternatives, 0), 0, 2, 0)).toEqual([{ start: 0, end: 2, text: '🙂', logprob: -1.5 }]);
  });

  it('clips a token split by a word accept to the part taken', () => {
    const suggestion = streamed(0, [[' nets.\n\nWe']]);
    const step = takeCharacters(suggestion, nextWordLength(ghostText(suggestion)));
    expect(step.inserted).toBe(' nets.');
    expect(step.spans).toEqual([{ start: 0, end: 6, text: ' nets.', logprob: -1 }]);
    expect(step.next && spansForRange(nth(step.next.alternatives, 0), step.next.consumed, 10, step.next.anchor)).toEqual([
      { start: 6, end: 10, text: '\n\nWe', logprob: -1 },
    ]);
  });
});

describe('alternatives', () => {
  const three = streamed(0, [[' a'], [' b'], [' c']]);

  it.each([
    [1, [' b', ' c', ' a']],
    [-1, [' c', ' b', ' a']],
  ])('cycle by %i visits every alternative and wraps', (step, expected) => {
    const seen: string[] = [];
    let suggestion = three;
    for (let i = 0; i < 3; i += 1) {
      suggestion = cycleAlternative(suggestion, step);
      seen.push(ghostText(suggestion));
    }
    expect(seen).toEqual(expected);
  });

  it('stops cycling once part of an alternative was taken', () => {
    const next = takeCharacters(cycleAlternative(three, 1), 1).next!;
    expect(ghostText(cycleAlternative(next, 1))).toBe('b');
  });

  it('tokens of each index go to their own alternative', () => {
    expect(three.alternatives.map((alternative) => alternative.text)).toEqual([' a', ' b', ' c']);
  });

  it('the final texts replace the streamed ones', () => {
    const finished = finishSuggestion(streamed(0, [[' a', ' STOP', ' x']]), [{ text: ' a', finishReason: 'stop' }]);
    expect(ghostText(finished)).toBe(' a');
    expect(finished.streaming).toBe(false);
  });
});

describe('a lead the writer typed before asking', () => {
  it('is not shown again: the ghost starts after it, and spans start at the anchor', () => {
    const suggestion = streamed(13, [[' method', ' to']], -1, ' ');
    expect(ghostText(suggestion)).toBe('method to');
    const { inserted, at, spans } = takeCharacters(suggestion, 'method'.length);
    expect([inserted, at]).toEqual(['method', 13]);
    expect(spans).toEqual([{ start: 13, end: 19, logprob: -1, text: 'method' }]);
  });

  it('a continuation that does not begin with it shows nothing', () => {
    const suggestion = streamed(13, [['n', ' idea']], -1, ' ');
    expect(ghostText(suggestion)).toBe('');
    expect(hasAnyText(suggestion)).toBe(false);
    expect(hasAnyText(streamed(13, [[' idea']], -1, ' '))).toBe(true);
    expect(hasAnyText(startSuggestion(13, 1, ' '))).toBe(false);
  });
});

describe('followTyping', () => {
  const draft = 'We train. It works.';
  const at = 'We train'.length;
  const suggestion = streamed(at, [[' deep', ' nets']]);
  const typing = (typed: string) => draft.slice(0, at) + typed + draft.slice(at);

  it('typing the ghost text keeps the rest of it, moved along', () => {
    const next = followTyping(suggestion, draft, typing(' de'), at + 3);
    expect(next && [ghostText(next), next.anchor]).toEqual(['ep nets', at + 3]);
  });

  it.each([
    ['other characters', typing(' dx'), at + 3],
    ['the same characters elsewhere', ' de' + draft, 3],
    ['a deletion', draft.slice(0, at - 1) + draft.slice(at), at - 1],
    ['text that leaves the cursor elsewhere', typing(' de'), at + 1],
  ])('%s: null (the suggestion is dismissed)', (_, next, caret) => {
    expect(followTyping(suggestion, draft, next, caret)).toBeNull();
  });

  it('typing all of a finished suggestion leaves nothing; of a streaming one, the stream goes on', () => {
    const finished = finishSuggestion(suggestion, [{ text: ' deep nets', finishReason: 'length' }]);
    expect(followTyping(finished, draft, typing(' deep nets'), at + 10)).toBeNull();
    const next = followTyping(suggestion, draft, typing(' deep nets'), at + 10);
    expect(next && [ghostText(next), next.streaming]).toEqual(['', true]);
  });
});
