/* The API objects the plugin reads and writes: this project's three kinds (see
 * src/kubevirt_usb/models.py, the one source of truth the CRDs are generated from) and the two
 * KubeVirt kinds a VM's USB tab needs. */
import type { K8sModel, K8sResourceCommon } from '@openshift-console/dynamic-plugin-sdk';

export const GROUP = 'usb.kubevirt-usb.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

const usbModel = (kind: string, plural: string, namespaced: boolean, abbr: string): K8sModel => ({
  kind,
  plural,
  label: kind,
  labelPlural: `${kind}s`,
  abbr,
  apiGroup: GROUP,
  apiVersion: VERSION,
  namespaced,
  crd: true,
});

export const USBDeviceModel = usbModel('USBDevice', 'usbdevices', false, 'USBD');
export const USBAttachmentModel = usbModel('USBAttachment', 'usbattachments', true, 'USBA');
export const USBPolicyModel = usbModel('USBPolicy', 'usbpolicies', false, 'USBP');

export const VirtualMachineModel: K8sModel = {
  kind: 'VirtualMachine',
  plural: 'virtualmachines',
  label: 'VirtualMachine',
  labelPlural: 'VirtualMachines',
  abbr: 'VM',
  apiGroup: 'kubevirt.io',
  apiVersion: 'v1',
  namespaced: true,
  crd: true,
};

export const VirtualMachineInstanceModel: K8sModel = {
  ...VirtualMachineModel,
  kind: 'VirtualMachineInstance',
  plural: 'virtualmachineinstances',
  label: 'VirtualMachineInstance',
  labelPlural: 'VirtualMachineInstances',
  abbr: 'VMI',
};

export const gvk = (model: K8sModel) => ({
  group: model.apiGroup ?? '',
  version: model.apiVersion,
  kind: model.kind,
});

export interface DeviceSelector {
  name?: string;
  vendorId?: string;
  productId?: string;
  serial?: string;
  product?: string;
  node?: string;
  port?: string;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string | null;
}

export type USBDevice = K8sResourceCommon & {
  spec?: {
    claimRef?: {
      namespace: string;
      attachment: string;
      vm: string;
      uid?: string | null;
      vmiUID?: string | null;
    } | null;
  };
  status?: {
    node?: string;
    identity?: { tier: 'serial' | 'serial+descriptors' | 'port'; key: string };
    portPath?: string;
    vendorId?: string;
    productId?: string;
    vendorName?: string | null;
    productName?: string | null;
    manufacturer?: string | null;
    product?: string | null;
    serial?: string | null;
    speed?: string | null;
    present?: boolean;
    state?: 'Available' | 'Absent';
    lastSeen?: string | null;
    absentSince?: string | null;
    conditions?: Condition[];
  };
};

export type AttachmentPhase =
  | 'Pending'
  | 'WaitingForDevice'
  | 'NotAllowed'
  | 'VMNotReady'
  | 'NoFreeSlot'
  | 'Bound'
  | 'Connecting'
  | 'Attached'
  | 'Failed';

export type USBAttachment = K8sResourceCommon & {
  spec?: { vm: string; device?: DeviceSelector };
  status?: {
    phase?: AttachmentPhase;
    message?: string;
    device?: string | null;
    node?: string | null;
    vmiUID?: string | null;
    slot?: number | null;
    bytesToVM?: number;
    bytesFromVM?: number;
    reconnects?: number;
    lastError?: string | null;
    attachedSince?: string | null;
  };
};

export type USBPolicy = K8sResourceCommon & {
  spec?: {
    namespaces?: string[];
    namespaceSelector?: {
      matchLabels?: Record<string, string>;
      matchExpressions?: { key: string; operator: string; values?: string[] }[];
    } | null;
    devices?: DeviceSelector;
  };
};

export type VirtualMachine = K8sResourceCommon & {
  spec?: {
    running?: boolean;
    runStrategy?: string;
    template?: {
      spec?: {
        domain?: { devices?: Record<string, unknown> };
      };
    };
  };
  status?: { printableStatus?: string };
};

export type VirtualMachineInstance = K8sResourceCommon & {
  spec?: { domain?: { devices?: Record<string, unknown> } };
  status?: { phase?: string; nodeName?: string };
};
