import { describe, expect, it } from 'vitest';
import { applyEdit, diffEdit, spansMatchingText, type ModelSpan } from './model-spans';

const span = (start: number, end: number, text: string, logprob: number | null = -1): ModelSpan => ({ start, end, text, logprob });

describe('diffEdit', () => {
  it.each([
    ['abc', 'abXc', { start: 2, end: 2, insertedLength: 1 }],
    ['abc', 'ac', { start: 1, end: 2, insertedLength: 0 }],
    ['abc', 'aZZc', { start: 1, end: 2, insertedLength: 2 }],
    ['abc', 'abc', { start: 3, end: 3, insertedLength: 0 }],
    ['', 'hello', { start: 0, end: 0, insertedLength: 5 }],
    ['aa', 'aaa', { start: 2, end: 2, insertedLength: 1 }],
  ])('%j -> %j', (before, after, edit) => {
    expect(diffEdit(before, after)).toEqual(edit);
  });

  it.each([
    ['aa', 'aaa', 1, { start: 0, end: 0, insertedLength: 1 }],
    ['aa', 'aaa', 2, { start: 1, end: 1, insertedLength: 1 }],
    ['a a', 'a a a', 3, { start: 1, end: 1, insertedLength: 2 }],
    ['abc', 'abXc', 3, { start: 2, end: 2, insertedLength: 1 }],
    ['abcabc', 'abc', 0, { start: 0, end: 3, insertedLength: 0 }],
  ])('%j -> %j with the caret at %i', (before, after, caret, edit) => {
    expect(diffEdit(before, after, caret)).toEqual(edit);
  });
});

describe('applyEdit keeps spans in step with the draft', () => {
  // Draft "We propose a method" with " a" and " method" written by the model.
  const text = 'We propose a method';
  const spans = [span(10, 12, ' a'), span(12, 19, ' method')];

  it.each([
    ['typing before every span moves them', 'Now We propose a method', [span(14, 16, ' a'), span(16, 23, ' method')]],
    ['typing after every span keeps them', 'We propose a method.', spans],
    ['typing between two spans keeps both', 'We propose a new method', [span(10, 12, ' a'), span(16, 23, ' method')], 16],
    ['typing after the space of a span is inside it', 'We propose a new method', [span(10, 12, ' a')], 17],
    ['typing inside a span drops only it', 'We propose a metXhod', [span(10, 12, ' a')], 17],
    ['deleting part of a span drops it', 'We propose a meth', [span(10, 12, ' a')]],
    ['deleting across both drops both', 'We propose', []],
    ['replacing the start keeps the spans moved', 'They propose a method', [span(12, 14, ' a'), span(14, 21, ' method')]],
  ])('%s', (_, edited, expected, caret?: number) => {
    const result = applyEdit(spans, diffEdit(text, edited, caret));
    expect(result).toEqual(expected);
    for (const kept of result) expect(edited.slice(kept.start, kept.end)).toBe(kept.text);
  });
});

describe('spansMatchingText', () => {
  it('drops spans that no longer describe the stored text', () => {
    const good = span(0, 2, 'We');
    expect(spansMatchingText([good, span(3, 10, 'PROPOSE'), span(5, 3, ''), span(0, 99, 'We')], 'We propose')).toEqual([good]);
  });
});
