import { attachment } from '../test/objects';
import { attachProgress, detachProgress } from './progress';

describe('attachProgress', () => {
  it('walks Requested, Bound, Connecting, Attached', () => {
    const at = (status: Parameters<typeof attachment>[2]) =>
      attachProgress(attachment('a', 'vm1', status), 'vm1', 'serial=AAA1');
    expect(at({})).toMatchObject({
      step: 0,
      settled: false,
      text: 'Waiting for the controller to bind a device.',
    });
    expect(at({ phase: 'Bound', device: 'aaa1', node: 'node1' })).toMatchObject({
      step: 1,
      text: "Bound to aaa1 on node1; waiting for its node's agent.",
    });
    expect(at({ phase: 'Connecting' })).toMatchObject({ step: 2, tone: 'info' });
    expect(at({ phase: 'Attached', device: 'aaa1' })).toEqual({
      title: 'Attached to vm1',
      text: 'aaa1 is in vm1.',
      tone: 'success',
      step: 3,
      settled: true,
    });
  });

  it("gives the controller's refusal in its own words", () => {
    const refused = attachProgress(
      attachment('a', 'vm1', {
        phase: 'NotAllowed',
        message: 'no USBPolicy lets namespace default use device aaa1',
      }),
      'vm1',
      'serial=AAA1',
    );
    expect(refused).toMatchObject({
      title: 'NotAllowed: not attached yet',
      text: 'no USBPolicy lets namespace default use device aaa1',
      tone: 'danger',
      settled: true,
    });
  });

  it('explains a waiting phase the controller gave no message for', () => {
    expect(
      attachProgress(attachment('a', 'vm1', { phase: 'NoFreeSlot' }), 'vm1', 'x'),
    ).toMatchObject({ text: 'All four usbredir slots of the VM are in use.', tone: 'warning' });
  });

  it('says when the attachment went away', () => {
    expect(attachProgress(undefined, 'vm1', 'x')).toMatchObject({
      title: 'Not attached to vm1',
      settled: true,
    });
  });
});

describe('detachProgress', () => {
  it('waits until the attachment is gone', () => {
    expect(detachProgress(attachment('a', 'vm1', { phase: 'Attached' }), 'vm1')).toMatchObject({
      text: 'Waiting for the device to be released (now Attached).',
      settled: false,
    });
    expect(detachProgress(undefined, 'vm1')).toMatchObject({
      title: 'Detached from vm1',
      tone: 'success',
      settled: true,
    });
  });
});
