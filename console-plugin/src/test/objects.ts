/* Fixtures: API objects as the sandbox's controller and agents write them. */
import type {
  USBAttachment,
  USBDevice,
  USBPolicy,
  VirtualMachine,
  VirtualMachineInstance,
} from '../k8s/models';

export const HOSTILE_PRODUCT = '<img src=x onerror="alert(1)"><b>USB\u202eKey</b>';
export const HOSTILE_SERIAL = '<script>alert("serial")</script>\u001b[31m';

export const device = (
  name: string,
  status: Partial<NonNullable<USBDevice['status']>> = {},
  claim?: NonNullable<USBDevice['spec']>['claimRef'],
): USBDevice => ({
  apiVersion: 'usb.kubevirt-usb.io/v1alpha1',
  kind: 'USBDevice',
  metadata: { name, creationTimestamp: '2026-12-07T10:00:00Z' },
  spec: claim ? { claimRef: claim } : {},
  status: {
    node: 'node1',
    identity: { tier: 'serial', key: `46f4:0001:${name}` },
    portPath: '1-1',
    vendorId: '46f4',
    productId: '0001',
    vendorName: 'QEMU',
    productName: 'QEMU USB HARDDRIVE',
    product: 'QEMU USB HARDDRIVE',
    manufacturer: 'QEMU',
    serial: name.toUpperCase(),
    present: true,
    state: 'Available',
    lastSeen: '2026-12-07T11:59:00Z',
    ...status,
  },
});

export const attachment = (
  name: string,
  vm: string,
  status: NonNullable<USBAttachment['status']> = {},
  extra: Partial<NonNullable<USBAttachment['metadata']>> = {},
): USBAttachment => ({
  apiVersion: 'usb.kubevirt-usb.io/v1alpha1',
  kind: 'USBAttachment',
  metadata: {
    name,
    namespace: 'default',
    creationTimestamp: '2026-12-07T11:00:00Z',
    ...extra,
  },
  spec: { vm, device: { serial: 'AAA1' } },
  status,
});

export const vm = (name: string, passthrough = true, runStrategy = 'Always'): VirtualMachine => ({
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachine',
  metadata: { name, namespace: 'default', resourceVersion: '7' },
  spec: {
    runStrategy,
    template: {
      spec: {
        domain: { devices: passthrough ? { clientPassthrough: {}, disks: [] } : { disks: [] } },
      },
    },
  },
  status: { printableStatus: 'Running' },
});

export const vmi = (name: string, passthrough = true): VirtualMachineInstance => ({
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstance',
  metadata: { name, namespace: 'default' },
  spec: { domain: { devices: passthrough ? { clientPassthrough: {} } : {} } },
  status: { phase: 'Running', nodeName: 'node1' },
});

export const policy = (
  name: string,
  namespaces: string[],
  devices: NonNullable<USBPolicy['spec']>['devices'] = {},
): USBPolicy => ({
  apiVersion: 'usb.kubevirt-usb.io/v1alpha1',
  kind: 'USBPolicy',
  metadata: { name, resourceVersion: '3', creationTimestamp: '2026-12-07T09:00:00Z' },
  spec: { namespaces, devices },
});
