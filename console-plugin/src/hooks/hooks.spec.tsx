import { act, renderHook } from '@testing-library/react';
import { fixtures, useAccessReview } from '../test/console-sdk';
import { attachment, vmi } from '../test/objects';
import { useActionProgress } from './useActionProgress';
import { useNow } from './useNow';
import { useAttachments, useDevices, usePolicies, useVMI } from './useUSBWatches';
import { usePolicyRights, useVMRights } from './useUSBRights';

describe('useUSBWatches', () => {
  it("watches a namespace's attachments and follows changes", () => {
    fixtures.set('USBAttachment', [
      attachment('a', 'vm1'),
      { ...attachment('b', 'vm1'), metadata: { name: 'b', namespace: 'other' } },
    ]);
    const { result } = renderHook(() => useAttachments('default'));
    expect(result.current.items.map((a) => a.metadata?.name)).toEqual(['a']);
    act(() => {
      fixtures.update('USBAttachment', attachment('c', 'vm1'));
    });
    expect(result.current.items.map((a) => a.metadata?.name)).toEqual(['a', 'c']);
  });

  it('gives the watch error and no items', () => {
    fixtures.fail('USBDevice', new Error('forbidden'));
    const { result } = renderHook(() => useDevices());
    expect(result.current).toEqual({ items: [], loaded: true, error: new Error('forbidden') });
  });

  it('does not watch policies when not enabled', () => {
    const { result } = renderHook(() => usePolicies(false));
    expect(result.current.items).toEqual([]);
  });

  it('reads a missing VMI as none (the VM is stopped), not as an error', () => {
    const { result } = renderHook(() => useVMI('default', 'vm1'));
    expect(result.current).toEqual({ items: undefined, loaded: true, error: undefined });
    act(() => {
      fixtures.set('VirtualMachineInstance', [vmi('vm1')]);
    });
    expect(result.current.items?.status?.nodeName).toBe('node1');
  });
});

describe('useUSBRights', () => {
  it('asks the API about the exact resources and verbs', () => {
    fixtures.allow((a) => a.resource === 'usbattachments' && a.verb === 'delete');
    const { result } = renderHook(() => useVMRights('lab', 'vm1'));
    expect(result.current.attach.allowed).toBe(false);
    expect(result.current.detach.allowed).toBe(true);
    expect(useAccessReview).toHaveBeenCalledWith({
      group: 'usb.kubevirt-usb.io',
      resource: 'usbattachments',
      verb: 'create',
      namespace: 'lab',
    });
    expect(useAccessReview).toHaveBeenCalledWith({
      group: 'kubevirt.io',
      resource: 'virtualmachines',
      verb: 'patch',
      namespace: 'lab',
      name: 'vm1',
    });
  });

  it('checks cluster-wide policy rights', () => {
    fixtures.allow((a) => a.verb === 'list');
    const { result } = renderHook(() => usePolicyRights());
    expect(result.current.list.allowed).toBe(true);
    expect(result.current.create.allowed).toBe(false);
  });
});

describe('useActionProgress', () => {
  it('follows an attach from the created object until the watch shows it, then the watch', () => {
    const created = attachment('vm1-x', 'vm1');
    const { result, rerender } = renderHook(({ items }) => useActionProgress(items), {
      initialProps: { items: [attachment('other', 'vm1')] },
    });
    act(() => {
      result.current.start({ kind: 'attach', name: 'vm1-x', vm: 'vm1', device: 'd', created });
    });
    expect(result.current.progress?.step).toBe(0);
    rerender({ items: [attachment('vm1-x', 'vm1', { phase: 'Bound' })] });
    expect(result.current.progress?.step).toBe(1);
    rerender({ items: [] });
    expect(result.current.progress?.title).toBe('Not attached to vm1');
  });
});

describe('useNow', () => {
  it('renews the clock', () => {
    jest.useFakeTimers();
    try {
      const { result } = renderHook(() => useNow(1000));
      const first = result.current.getTime();
      act(() => {
        jest.advanceTimersByTime(5000);
      });
      expect(result.current.getTime()).toBeGreaterThan(first);
    } finally {
      jest.useRealTimers();
    }
  });
});
