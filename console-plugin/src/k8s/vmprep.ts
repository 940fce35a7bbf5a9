/* What a VirtualMachine needs before devices can be redirected into it, decided from the VM and
 * its running VMI (src/kubevirt_usb/kubectl_usb/vmprep.py, the rules of `kubectl usb prepare-vm`).
 *
 * KubeVirt gives a VMI its four usbredir slots only when `spec.domain.devices.clientPassthrough:
 * {}` is in the VM's template when the VMI starts: the template is patched, and a VMI already
 * running without it is restarted by deleting it, which KubeVirt undoes when the VM's
 * runStrategy is Always. Pure. */
import type { Patch } from '@openshift-console/dynamic-plugin-sdk';
import type { VirtualMachine, VirtualMachineInstance } from './models';

export type Restart = 'not-running' | 'not-needed' | 'needed';

export interface PreparePlan {
  /** The template lacks clientPassthrough. */
  patchNeeded: boolean;
  restart: Restart;
  /** Deleting the VMI restarts the VM (runStrategy Always); otherwise it would stop it. */
  restartByDeletingVMI: boolean;
  runStrategy: string;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export const hasClientPassthrough = (devices: unknown): boolean =>
  isObject(devices) && isObject(devices.clientPassthrough);

export const runStrategy = (vm: VirtualMachine): string => {
  if (vm.spec?.runStrategy) {
    return vm.spec.runStrategy;
  }
  if (vm.spec?.running === true) {
    return 'Always';
  }
  return vm.spec?.running === false ? 'Halted' : 'Unknown';
};

export const planPrepare = (
  vm: VirtualMachine,
  vmi: VirtualMachineInstance | undefined,
): PreparePlan => {
  let restart: Restart;
  if (!vmi || vmi.status?.phase === 'Succeeded' || vmi.status?.phase === 'Failed') {
    restart = 'not-running';
  } else if (hasClientPassthrough(vmi.spec?.domain?.devices)) {
    restart = 'not-needed';
  } else {
    restart = 'needed';
  }
  const strategy = runStrategy(vm);
  return {
    patchNeeded: !hasClientPassthrough(vm.spec?.template?.spec?.domain?.devices),
    restart,
    restartByDeletingVMI: strategy === 'Always',
    runStrategy: strategy,
  };
};

/** The JSON patch that adds `clientPassthrough: {}` to the VM's template (the template's
 * `domain.devices` always exists on a valid VM: KubeVirt requires `domain`). */
export const passthroughPatch = (vm: VirtualMachine): Patch[] =>
  vm.spec?.template?.spec?.domain?.devices
    ? [{ op: 'add', path: '/spec/template/spec/domain/devices/clientPassthrough', value: {} }]
    : [{ op: 'add', path: '/spec/template/spec/domain/devices', value: { clientPassthrough: {} } }];

/** What the fix will do, in the words the confirmation asks with. */
export const prepareSteps = (plan: PreparePlan, vm: string, namespace: string): string[] => {
  const steps: string[] = [];
  if (plan.patchNeeded) {
    steps.push(
      `Add clientPassthrough to ${vm}'s template (spec.template.spec.domain.devices.clientPassthrough: {}).`,
    );
  }
  if (plan.restart === 'needed') {
    steps.push(
      plan.restartByDeletingVMI
        ? `Restart ${vm}: its running instance was started without clientPassthrough, so it is deleted and KubeVirt starts it again (runStrategy Always). The guest reboots.`
        : `${vm} must restart, but its runStrategy is ${plan.runStrategy}, so deleting its instance would stop it, not restart it: restart it yourself (virtctl restart ${vm} -n ${namespace}).`,
    );
  } else if (plan.restart === 'not-running') {
    steps.push(`${vm} is not running; its instance gets USB redirection when it starts.`);
  }
  return steps;
};
