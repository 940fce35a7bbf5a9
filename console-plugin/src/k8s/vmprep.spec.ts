import { vm, vmi } from '../test/objects';
import { passthroughPatch, planPrepare, prepareSteps, runStrategy } from './vmprep';

describe('planPrepare', () => {
  it('needs nothing when template and instance have clientPassthrough', () => {
    expect(planPrepare(vm('vm1'), vmi('vm1'))).toMatchObject({
      patchNeeded: false,
      restart: 'not-needed',
    });
  });

  it('patches and restarts a running VM without it', () => {
    const plan = planPrepare(vm('vm1', false), vmi('vm1', false));
    expect(plan).toEqual({
      patchNeeded: true,
      restart: 'needed',
      restartByDeletingVMI: true,
      runStrategy: 'Always',
    });
    expect(prepareSteps(plan, 'vm1', 'default')).toEqual([
      "Add clientPassthrough to vm1's template (spec.template.spec.domain.devices.clientPassthrough: {}).",
      'Restart vm1: its running instance was started without clientPassthrough, so it is deleted and KubeVirt starts it again (runStrategy Always). The guest reboots.',
    ]);
  });

  it('does not delete the instance of a VM that would then stay stopped', () => {
    const plan = planPrepare(vm('vm1', false, 'Manual'), vmi('vm1', false));
    expect(plan.restartByDeletingVMI).toBe(false);
    expect(prepareSteps(plan, 'vm1', 'lab')[1]).toContain('virtctl restart vm1 -n lab');
  });

  it('only patches a stopped VM', () => {
    const plan = planPrepare(vm('vm1', false), undefined);
    expect(plan.restart).toBe('not-running');
  });

  it('reads the older spec.running', () => {
    expect(runStrategy({ spec: { running: true } })).toBe('Always');
    expect(runStrategy({ spec: { running: false } })).toBe('Halted');
    expect(runStrategy({})).toBe('Unknown');
  });
});

describe('passthroughPatch', () => {
  it('adds clientPassthrough to the template devices', () => {
    expect(passthroughPatch(vm('vm1', false))).toEqual([
      { op: 'add', path: '/spec/template/spec/domain/devices/clientPassthrough', value: {} },
    ]);
    expect(passthroughPatch({ spec: { template: { spec: { domain: {} } } } })).toEqual([
      { op: 'add', path: '/spec/template/spec/domain/devices', value: { clientPassthrough: {} } },
    ]);
  });
});
