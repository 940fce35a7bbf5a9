import { isDNSLabel, parseSelector, selectorSummary } from './selectors';

describe('parseSelector', () => {
  it('reads keys and ids as the web UI does', () => {
    expect(parseSelector('serial=AAA1, node=node1')).toEqual({
      selector: { serial: 'AAA1', node: 'node1' },
    });
    expect(parseSelector('0781:55AB')).toEqual({
      selector: { vendorId: '0781', productId: '55ab' },
    });
    expect(parseSelector('productName=My Key, vendor=46F4')).toEqual({
      selector: { product: 'My Key', vendorId: '46f4' },
    });
  });

  it('says what cannot be read', () => {
    expect(parseSelector('colour=red')).toEqual({
      error: expect.stringContaining("cannot read 'colour=red'") as unknown,
    });
    expect(parseSelector(' , ')).toEqual({
      error: expect.stringContaining('the selector is empty') as unknown,
    });
    expect(parseSelector('vendor=12345')).toEqual({
      error: expect.stringContaining('vendorId must be 4 hex digits') as unknown,
    });
    expect(parseSelector('port=usb3')).toEqual({
      error: expect.stringContaining('port must be a port path') as unknown,
    });
  });

  it('refuses control characters', () => {
    expect(parseSelector('serial=A\u0007')).toEqual({
      error: expect.stringContaining('control character') as unknown,
    });
  });
});

describe('selectorSummary', () => {
  it('shows a selector as it would be typed', () => {
    expect(selectorSummary({ serial: 'AAA1', node: 'node1' })).toBe('serial=AAA1, node=node1');
    expect(selectorSummary({})).toBe('any device');
    expect(selectorSummary(undefined, 'every device')).toBe('every device');
  });
});

describe('isDNSLabel', () => {
  it('takes namespaces and refuses other text', () => {
    expect(isDNSLabel('lab-1')).toBe(true);
    expect(isDNSLabel('Lab')).toBe(false);
    expect(isDNSLabel('a'.repeat(64))).toBe(false);
  });
});
