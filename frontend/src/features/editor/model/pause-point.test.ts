import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_AFTER_S } from '@/config/suggest-on-pause';
import { ApiError } from '@/lib/api-client';
import { classifyPauseFailure, isPausePoint, pausePrompt } from './pause-point';

/** "|" marks the cursor. */
const at = (marked: string): [string, number] => [marked.replace('|', ''), marked.indexOf('|')];

describe('isPausePoint', () => {
  it.each(['We propose|', 'We propose |', 'We propose a method.|', 'A title\n\n|', 'the (best)| one', 'é|', 'We| train', '1,000|'])(
    'yes: %j',
    (marked) => {
      const [text, caret] = at(marked);
      expect(isPausePoint(text, caret, caret)).toBe(true);
    },
  );

  it.each(['|', '   |', 'We pro|pose', 'We (|', 'state-of-|', 'We|train'])('no: %j', (marked) => {
    const [text, caret] = at(marked);
    expect(isPausePoint(text, caret, caret)).toBe(false);
  });

  it('no on a selection', () => {
    expect(isPausePoint('We propose', 3, 10)).toBe(false);
  });
});

describe('pausePrompt', () => {
  it.each([
    ['We propose a |', { prompt: 'We propose a', lead: ' ' }],
    ['We propose a|', { prompt: 'We propose a', lead: '' }],
    ['We propose a  |', { prompt: 'We propose a  ', lead: '' }],
    ['A title\n|', { prompt: 'A title\n', lead: '' }],
    ['We propose a | method', { prompt: 'We propose a', lead: ' ' }],
  ])('%j -> %j', (marked, expected) => {
    const [text, caret] = at(marked);
    expect(pausePrompt(text, caret)).toEqual(expected);
  });
});

describe('classifyPauseFailure', () => {
  it('429: back off for Retry-After, or the default when the server did not say', () => {
    expect(classifyPauseFailure(new ApiError('busy', { status: 429, type: 'overloaded', retryAfterSeconds: 7 }))).toEqual({ kind: 'back-off', ms: 7000 });
    expect(classifyPauseFailure(new ApiError('busy', { status: 429, type: 'overloaded' }))).toEqual({ kind: 'back-off', ms: DEFAULT_RETRY_AFTER_S * 1000 });
  });

  it('503 or no connection: the server is down', () => {
    expect(classifyPauseFailure(new ApiError('No model is loaded.', { status: 503, type: 'unavailable' }))).toEqual({ kind: 'server-down', reason: 'No model is loaded.' });
    expect(classifyPauseFailure(new ApiError('Cannot reach the server.', { type: 'network' }))).toEqual({ kind: 'server-down', reason: 'Cannot reach the server.' });
  });

  it('anything else costs only this suggestion', () => {
    expect(classifyPauseFailure(new ApiError('text too long', { status: 422, type: 'validation', field: 'text' }))).toEqual({ kind: 'skip' });
  });
});
