/* Live lists of this project's objects, from the console's watches (the SDK's
 * useK8sWatchResource: a list, then watch events through the console's proxy, with the signed-in
 * user's token). No polling. */
import { useK8sWatchResource } from '@openshift-console/dynamic-plugin-sdk';
import {
  gvk,
  USBAttachmentModel,
  USBDeviceModel,
  USBPolicyModel,
  VirtualMachineInstanceModel,
  type USBAttachment,
  type USBDevice,
  type USBPolicy,
  type VirtualMachineInstance,
} from '../k8s/models';

export interface Watched<T> {
  items: T;
  loaded: boolean;
  error: unknown;
}

const list = <T>([data, loaded, error]: [T[] | undefined, boolean, unknown]): Watched<T[]> => ({
  items: Array.isArray(data) ? data : [],
  loaded,
  error: error ?? undefined,
});

export const useAttachments = (namespace?: string): Watched<USBAttachment[]> =>
  list(
    useK8sWatchResource<USBAttachment[]>({
      groupVersionKind: gvk(USBAttachmentModel),
      isList: true,
      namespace,
      namespaced: true,
    }),
  );

export const useDevices = (): Watched<USBDevice[]> =>
  list(useK8sWatchResource<USBDevice[]>({ groupVersionKind: gvk(USBDeviceModel), isList: true }));

/** `enabled` false: no watch at all (users who may not list policies see no error). */
export const usePolicies = (enabled = true): Watched<USBPolicy[]> =>
  list(
    useK8sWatchResource<USBPolicy[]>(
      enabled ? { groupVersionKind: gvk(USBPolicyModel), isList: true } : null,
    ),
  );

/** The VM's running instance; undefined while there is none. */
export const useVMI = (
  namespace: string | undefined,
  name: string | undefined,
): Watched<VirtualMachineInstance | undefined> => {
  const result = useK8sWatchResource<VirtualMachineInstance>(
    namespace && name
      ? { groupVersionKind: gvk(VirtualMachineInstanceModel), namespace, name }
      : null,
  );
  // Before it loads (or when there is none) the SDK gives undefined or {}.
  const data = result[0] as VirtualMachineInstance | undefined;
  const loaded = result[1];
  const error: unknown = result[2];
  const notFound = (error as { code?: number } | undefined)?.code === 404;
  return {
    items: !notFound && data?.metadata?.name ? data : undefined,
    loaded: loaded || notFound,
    error: notFound ? undefined : (error ?? undefined),
  };
};
