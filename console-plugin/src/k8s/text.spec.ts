import { age, apiMessage, count, formatBytes, printable } from './text';

describe('printable', () => {
  it('turns control and invisible formatting characters into escapes', () => {
    expect(printable('USB\u001b[31m\u202eKey')).toBe('USB\\x1b[31m\\u202eKey');
  });

  it('keeps markup as the characters it is made of', () => {
    expect(printable('<b>x</b>')).toBe('<b>x</b>');
  });

  it('cuts long text with an ellipsis', () => {
    expect(printable('abcdef', 3)).toBe('abc…');
  });

  it('shows nothing for a missing value', () => {
    expect(printable(undefined)).toBe('');
    expect(printable(null)).toBe('');
  });
});

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [512, '512 B'],
    [1536, '1.5 KiB'],
    [12 * 1024 * 1024, '12.0 MiB'],
    [-3, '0 B'],
    ['x', '0 B'],
  ])('%p is %s', (value, shown) => {
    expect(formatBytes(value)).toBe(shown);
  });
});

describe('age', () => {
  const now = new Date('2026-12-07T12:00:00Z');
  it.each([
    ['2026-12-07T11:59:48Z', '12s'],
    ['2026-12-07T11:55:00Z', '5m'],
    ['2026-12-07T09:00:00Z', '3h'],
    ['2026-12-05T12:00:00Z', '2d'],
    ['', ''],
    ['not a time', ''],
  ])('%s is %s ago', (then, shown) => {
    expect(age(then, now)).toBe(shown);
  });
});

describe('count and apiMessage', () => {
  it('reads only non-negative integers as counts', () => {
    expect(count(3)).toBe(3);
    expect(count(-1)).toBe(0);
    expect(count('7')).toBe(0);
  });

  it("gives the API's reason from an error", () => {
    expect(apiMessage(new Error('usbattachments is forbidden'))).toBe(
      'usbattachments is forbidden',
    );
    expect(apiMessage({})).toBe('the API server gave no reason');
  });
});
