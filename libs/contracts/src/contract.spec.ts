import { Type } from '@sinclair/typebox';
import { defineEvent, defineRequest } from './contract';
import { ERROR_HTTP_STATUS, ERROR_TITLES, ErrorCode, isErrorCode } from './errors';

const Empty = Type.Object({}, { additionalProperties: false });

describe('defineRequest', () => {
  it('accepts a well-formed subject and freezes the contract with a default timeout', () => {
    const contract = defineRequest({ subject: 'identity.jwks.get', service: 'identity', request: Empty, response: Empty });
    expect(contract).toMatchObject({ kind: 'request', subject: 'identity.jwks.get', service: 'identity', timeoutMs: 3000 });
    expect(Object.isFrozen(contract)).toBe(true);
  });

  it.each([
    ['evt.identity.user-created'],
    ['evt.x'],
    ['identity'],
    ['Identity.jwks.get'],
    ['identity..get'],
    ['identity.jwks.'],
    ['.identity.jwks'],
    ['identity.*'],
    ['identity.>'],
    ['identity jwks.get'],
    ['identity.1jwks'],
    [''],
  ])('rejects the subject %p', (subject) => {
    expect(() => defineRequest({ subject, service: 'identity', request: Empty, response: Empty })).toThrow('invalid request subject');
  });
});

describe('defineEvent', () => {
  it('accepts an evt. subject', () => {
    expect(defineEvent({ subject: 'evt.identity.user-created', payload: Empty })).toMatchObject({ kind: 'event' });
  });

  it.each([['identity.user-created'], ['evt'], ['evt.'], ['evt.*'], ['evt.>'], ['EVT.identity'], ['evtx.identity']])(
    'rejects the subject %p',
    (subject) => {
      expect(() => defineEvent({ subject, payload: Empty })).toThrow('invalid event subject');
    },
  );
});

describe('ErrorCode', () => {
  const codes = Object.values(ErrorCode);

  it('has codes', () => {
    expect(codes.length).toBeGreaterThan(0);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it.each(codes.map((c) => [c]))('%s has a 4xx/5xx HTTP status and a title', (code) => {
    const status = ERROR_HTTP_STATUS[code];
    expect(Number.isInteger(status)).toBe(true);
    expect(status).toBeGreaterThanOrEqual(400);
    expect(status).toBeLessThan(600);
    expect(typeof ERROR_TITLES[code]).toBe('string');
    expect(ERROR_TITLES[code].length).toBeGreaterThan(0);
    expect(isErrorCode(code)).toBe(true);
  });

  it('maps exactly the known codes', () => {
    expect(Object.keys(ERROR_HTTP_STATUS).sort()).toEqual([...codes].sort());
    expect(Object.keys(ERROR_TITLES).sort()).toEqual([...codes].sort());
    for (const value of ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'nope', 1, null]) expect(isErrorCode(value)).toBe(false);
  });
});
