import { policy } from '../test/objects';
import { planGrant, policiesForDevice, policyRows, readableName, revokePatch } from './policies';

describe('planGrant', () => {
  it('creates the policy kubectl usb allow would, named after the selector', () => {
    const plan = planGrant([], 'node1-1-1', 'lab');
    expect(plan).toEqual({
      kind: 'create',
      policy: {
        apiVersion: 'usb.kubevirt-usb.io/v1alpha1',
        kind: 'USBPolicy',
        metadata: {
          name: 'allow-device-node1-1-1',
          labels: { 'app.kubernetes.io/managed-by': 'kubevirt-usb-console-plugin' },
        },
        spec: { namespaces: ['lab'], devices: { name: 'node1-1-1' } },
      },
    });
  });

  it('extends the policy with exactly that selector, only at the version read', () => {
    const existing = policy('allow-device-d1', ['ci'], { name: 'd1' });
    const plan = planGrant(
      [policy('other', ['x'], { name: 'd1', node: 'n' }), existing],
      'd1',
      'lab',
    );
    expect(plan).toMatchObject({ kind: 'extend', namespaces: ['ci', 'lab'] });
    expect(plan.kind === 'extend' && plan.patch).toEqual([
      { op: 'test', path: '/metadata/resourceVersion', value: '3' },
      { op: 'replace', path: '/spec/namespaces', value: ['ci', 'lab'] },
    ]);
  });

  it('changes nothing when the namespace is already granted', () => {
    expect(planGrant([policy('p', ['lab'], { name: 'd1' })], 'd1', 'lab').kind).toBe('unchanged');
  });

  it('picks a free name when the readable one is taken by another selector', () => {
    const plan = planGrant([policy('allow-device-d1', ['x'], { serial: 'S' })], 'd1', 'lab');
    expect(plan.policy.metadata?.name).toBe('allow-device-d1-2');
  });
});

describe('revokePatch and rows', () => {
  it('removes a namespace, or says there is nothing to do', () => {
    const p = policy('p', ['a', 'b'], { name: 'd1' });
    expect(revokePatch(p, 'a')?.[1]).toEqual({
      op: 'replace',
      path: '/spec/namespaces',
      value: ['b'],
    });
    expect(revokePatch(p, 'zz')).toBeUndefined();
  });

  it('summarises policies', () => {
    const rows = policyRows(
      [
        {
          ...policy('z', [], {}),
          spec: { namespaceSelector: { matchLabels: { team: 'lab' } }, devices: {} },
        },
        policy('a', ['x'], { serial: 'AAA1' }),
      ],
      new Date('2026-12-07T12:00:00Z'),
    );
    expect(rows.map((r) => [r.name, r.devices, r.namespaceSelector, r.age])).toEqual([
      ['a', 'serial=AAA1', '', '3h'],
      ['z', 'every device', 'team=lab', '3h'],
    ]);
    expect(policiesForDevice([policy('a', [], { name: 'd1' })], 'd1')).toHaveLength(1);
  });

  it('makes readable names', () => {
    expect(readableName(['allow', 'serial', 'AB_c'])).toBe('allow-serial-ab-c');
  });
});
