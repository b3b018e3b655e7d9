/**
 * The editor against the server's contract (generate-contract.generated.ts, rendered from
 * /openapi.json): every request it can build is one the server accepts, its defaults are the
 * server's, and the test double of GET /health answers with the fields the server does.
 */
import { GENERATE_REQUEST_FIELDS, HEALTH_FIELDS } from '@/config/generate-contract.generated';
import { DEFAULT_SETTINGS, SETTING_BOUNDS, type GenerationSettings } from '@/config/generation';
import { buildGenerateRequest, buildPauseRequest } from '@/features/editor/api/generate';
import { HEALTH_OK } from '@/testing/server';

type FieldSchema = {
  type: string | readonly string[];
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  items?: FieldSchema;
};

const FIELDS: Record<string, FieldSchema> = GENERATE_REQUEST_FIELDS;

function numberProblems(name: string, value: number, schema: FieldSchema, kinds: readonly string[]): string[] {
  if (!kinds.includes('number') && !(kinds.includes('integer') && Number.isInteger(value))) return [`${name}: ${value} is not a ${kinds}`];
  const problems: string[] = [];
  if (schema.minimum !== undefined && value < schema.minimum) problems.push(`${name}: ${value} < ${schema.minimum}`);
  if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) problems.push(`${name}: ${value} <= ${schema.exclusiveMinimum}`);
  if (schema.maximum !== undefined && value > schema.maximum) problems.push(`${name}: ${value} > ${schema.maximum}`);
  return problems;
}

/** Why the server's schema refuses `value` for field `name` (empty when it accepts it). */
function fieldProblems(name: string, value: unknown, schema: FieldSchema): string[] {
  const kinds = typeof schema.type === 'string' ? [schema.type] : schema.type;
  if (value === null) return kinds.includes('null') ? [] : [`${name}: null`];
  if (typeof value === 'number') return numberProblems(name, value, schema, kinds);
  if (typeof value === 'boolean') return kinds.includes('boolean') ? [] : [`${name}: boolean`];
  if (typeof value === 'string') {
    const fits = kinds.includes('string') && value.length >= (schema.minLength ?? 0) && value.length <= (schema.maxLength ?? Infinity);
    return fits ? [] : [`${name}: string of ${value.length}`];
  }
  if (Array.isArray(value) && kinds.includes('array') && schema.items) {
    const items = schema.items;
    const tooMany = value.length > (schema.maxItems ?? Infinity) ? [`${name}: ${value.length} items`] : [];
    return [...tooMany, ...value.flatMap((item) => fieldProblems(`${name}[]`, item, items))];
  }
  return [`${name}: ${JSON.stringify(value)}`];
}

function requestProblems(body: Record<string, unknown>): string[] {
  return Object.entries(body).flatMap(([name, value]) =>
    FIELDS[name] ? fieldProblems(name, value, FIELDS[name]) : [`${name}: not a field of the contract`],
  );
}

const LOWEST: GenerationSettings = {
  maxNewTokens: SETTING_BOUNDS.maxNewTokens.min,
  temperature: SETTING_BOUNDS.temperature.min,
  topP: SETTING_BOUNDS.topP.min,
  seed: SETTING_BOUNDS.seed.min,
  alternatives: SETTING_BOUNDS.alternatives.min,
};
const HIGHEST: GenerationSettings = {
  maxNewTokens: SETTING_BOUNDS.maxNewTokens.max,
  temperature: SETTING_BOUNDS.temperature.max,
  topP: SETTING_BOUNDS.topP.max,
  seed: SETTING_BOUNDS.seed.max,
  alternatives: SETTING_BOUNDS.alternatives.max,
};

describe('the editor and the server contract', () => {
  it.each([
    ['defaults', DEFAULT_SETTINGS],
    ['every slider at its minimum', LOWEST],
    ['every slider at its maximum', HIGHEST],
  ])('builds requests the server accepts with %s', (_label, settings) => {
    expect(requestProblems(buildGenerateRequest('We propose', settings))).toEqual([]);
    expect(requestProblems(buildPauseRequest('We propose', settings))).toEqual([]);
  });

  it('finds a request the server would refuse', () => {
    // The check itself can fail: one value past each kind of bound.
    const refused = { text: '', max_new_tokens: 513, top_p: 0, n: 1.5, seed: -1, stop: ['', 'a', 'b', 'c', 'd'], logprobs: 1, max_tokens: 5 };
    expect(requestProblems(refused)).toHaveLength(9);
  });

  it("uses the server's defaults, inside the sliders' ranges", () => {
    const fields = GENERATE_REQUEST_FIELDS;
    expect(buildGenerateRequest('We', DEFAULT_SETTINGS)).toMatchObject({
      max_new_tokens: fields.max_new_tokens.default,
      temperature: fields.temperature.default,
      top_p: fields.top_p.default,
      seed: fields.seed.default,
      n: fields.n.default,
    });
    for (const key of ['maxNewTokens', 'temperature', 'topP', 'alternatives'] as const) {
      expect(DEFAULT_SETTINGS[key]).toBeGreaterThanOrEqual(SETTING_BOUNDS[key].min);
      expect(DEFAULT_SETTINGS[key]).toBeLessThanOrEqual(SETTING_BOUNDS[key].max);
    }
  });

  it('has a /health test double with the fields the server answers with', () => {
    expect(Object.keys(HEALTH_OK).sort()).toEqual([...HEALTH_FIELDS].sort());
  });
});
