/* What the signed-in user may do, as the API server decides it (SelfSubjectAccessReviews through
 * the SDK's useAccessReview): the views turn read-only and say why when a right is missing. */
import { useAccessReview } from '@openshift-console/dynamic-plugin-sdk';
import { GROUP } from '../k8s/models';

export interface Right {
  allowed: boolean;
  loading: boolean;
}

const right = ([allowed, loading]: [boolean, boolean]): Right => ({ allowed, loading });

/** Rights on a VM's USB tab. */
export const useVMRights = (namespace: string, vm: string) => ({
  attach: right(
    useAccessReview({ group: GROUP, resource: 'usbattachments', verb: 'create', namespace }),
  ),
  detach: right(
    useAccessReview({ group: GROUP, resource: 'usbattachments', verb: 'delete', namespace }),
  ),
  patchVM: right(
    useAccessReview({
      group: 'kubevirt.io',
      resource: 'virtualmachines',
      verb: 'patch',
      namespace,
      name: vm,
    }),
  ),
  restartVM: right(
    useAccessReview({
      group: 'kubevirt.io',
      resource: 'virtualmachineinstances',
      verb: 'delete',
      namespace,
      name: vm,
    }),
  ),
});

/** Rights on the devices page: seeing and changing USBPolicies (cluster-scoped). */
export const usePolicyRights = () => ({
  list: right(useAccessReview({ group: GROUP, resource: 'usbpolicies', verb: 'list' })),
  create: right(useAccessReview({ group: GROUP, resource: 'usbpolicies', verb: 'create' })),
  patch: right(useAccessReview({ group: GROUP, resource: 'usbpolicies', verb: 'patch' })),
});
