import { describe, expect, it } from 'vitest';
import { announcementFor } from './announcement';
import { addToken, finishSuggestion, startSuggestion, takeCharacters } from './suggestion';

const asked = { generating: true, automatic: false };
const automatic = { generating: true, automatic: true };
const idle = { generating: false, automatic: false };

describe('announcementFor', () => {
  const streaming = addToken(startSuggestion(2, 1), 0, { text: ' deep', logprob: -1 });
  const done = finishSuggestion(addToken(streaming, 0, { text: ' nets', logprob: -1 }), [{ text: ' deep nets', finishReason: 'length' }]);
  const full = 'Suggestion: deep nets. Press Tab to accept, Escape to dismiss.';

  it('says a suggestion the writer asked for is being written, and automatic ones nothing until complete', () => {
    expect(announcementFor(streaming, asked)).toBe('Writing a suggestion…');
    expect(announcementFor(streaming, automatic)).toBe('');
    expect(announcementFor(done, idle)).toBe(full);
  });

  it('stays the same as the writer takes the suggestion word by word or types through it', () => {
    const next = takeCharacters(done, 3).next;
    expect(announcementFor(next, idle)).toBe(full);
  });

  it('names the alternative on show, and leaves out the lead the writer typed', () => {
    const two = finishSuggestion(startSuggestion(2, 2), [
      { text: ' a', finishReason: 'length' },
      { text: ' b', finishReason: 'length' },
    ]);
    expect(announcementFor({ ...two, active: 1 }, idle)).toBe('Suggestion 2 of 2: b. Press Tab to accept, Escape to dismiss.');
    const led = finishSuggestion(startSuggestion(3, 1, ' '), [{ text: ' method', finishReason: 'stop' }]);
    expect(announcementFor(led, idle)).toBe('Suggestion: method. Press Tab to accept, Escape to dismiss.');
    expect(announcementFor(null, idle)).toBe('');
  });
});
