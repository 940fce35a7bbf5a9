import { attachment, device, HOSTILE_PRODUCT } from '../test/objects';
import { deviceLabel, deviceRows, devicesByNode, keepDevice, nodeNames, usedBy } from './devices';

const now = new Date('2026-12-07T12:00:00Z');
const claim = { namespace: 'default', attachment: 'vm1-abc', vm: 'vm1' };

describe('deviceRows', () => {
  it('tells free, used and absent devices apart, and since when', () => {
    const rows = deviceRows(
      [
        device('aaa1'),
        device('bbb2', { portPath: '1-2' }, claim),
        device('ccc3', { portPath: '1-3', present: false, absentSince: '2026-12-07T11:00:00Z' }),
      ],
      [attachment('vm1-abc', 'vm1', { phase: 'Attached', attachedSince: '2026-12-07T11:55:00Z' })],
      now,
    );
    expect(rows.map((r) => [r.name, r.state, r.sinceAge])).toEqual([
      ['aaa1', 'Available', '2h'],
      ['bbb2', 'In use', '5m'],
      ['ccc3', 'Absent', '1h'],
    ]);
    expect(usedBy(rows[1])).toBe('default/vm1');
    expect(rows[0].lastSeenAge).toBe('1m');
    expect(rows[0].identityTier).toBe('serial');
  });

  it('falls back to the ids when the device has no product string', () => {
    const [row] = deviceRows([device('x', { product: '', productName: null })], [], now);
    expect(row.product).toBe('46f4:0001');
    expect(deviceLabel(row)).toBe('46f4:0001 (X) on node1');
  });

  it('makes hostile product strings visible text', () => {
    const [row] = deviceRows([device('x', { product: HOSTILE_PRODUCT })], [], now);
    expect(row.product).toBe('<img src=x onerror="alert(1)"><b>USB\\u202eKey</b>');
  });
});

describe('filters and grouping', () => {
  const rows = deviceRows(
    [
      device('aaa1'),
      device('bbb2', { node: 'node2', serial: 'ZZZ9' }),
      device('ccc3', { node: 'node2', portPath: '1-4' }, claim),
    ],
    [],
    now,
  );

  it('groups by node in name order', () => {
    expect(devicesByNode(rows).map((g) => [g.node, g.rows.map((r) => r.name)])).toEqual([
      ['node1', ['aaa1']],
      ['node2', ['bbb2', 'ccc3']],
    ]);
    expect(nodeNames(rows)).toEqual(['node1', 'node2']);
  });

  it('keeps rows by node, state and text (case-insensitive, includes the holder)', () => {
    const f = { node: '', state: '', text: '' };
    expect(rows.filter((r) => keepDevice({ ...f, node: 'node2' }, r))).toHaveLength(2);
    expect(rows.filter((r) => keepDevice({ ...f, state: 'In use' }, r))).toHaveLength(1);
    expect(rows.find((r) => keepDevice({ ...f, text: 'zzz' }, r))?.name).toBe('bbb2');
    expect(rows.find((r) => keepDevice({ ...f, text: 'default/vm1' }, r))?.name).toBe('ccc3');
  });
});
