/* How far an attach or a detach the user started has come, from the attachment as the watch
 * shows it now (src/kubevirt_usb/web/progress.py, same steps and texts). Pure. */
import type { USBAttachment } from './models';
import { PHASE_TONE } from './attachments';
import { printable } from './text';

export const STEPS = ['Requested', 'Bound', 'Connecting', 'Attached'] as const;
const STEP_OF_PHASE: Record<string, number> = { Pending: 0, Bound: 1, Connecting: 2, Attached: 3 };
const WAITING: Record<string, string> = {
  WaitingForDevice: 'No matching device is plugged in; it attaches when one is.',
  NotAllowed: 'No USBPolicy lets this namespace use that device.',
  VMNotReady: 'The VM is not running (or has no USB client passthrough).',
  NoFreeSlot: 'All four usbredir slots of the VM are in use.',
  Failed: 'The attachment failed.',
};

export type AlertTone = 'info' | 'success' | 'warning' | 'danger';

export interface Progress {
  title: string;
  text: string;
  tone: AlertTone;
  /** 0..3 along STEPS; -1 when the steps do not apply. */
  step: number;
  settled: boolean;
}

/** Progress of an attach; `attachment` undefined: it was deleted meanwhile. */
export const attachProgress = (
  attachment: USBAttachment | undefined,
  vm: string,
  device: string,
): Progress => {
  if (!attachment) {
    return {
      title: `Not attached to ${vm}`,
      text: 'The attachment was deleted.',
      tone: 'warning',
      step: -1,
      settled: true,
    };
  }
  const status = attachment.status ?? {};
  const phase = status.phase ?? 'Pending';
  const message = printable(status.message, 512);
  if (attachment.metadata?.deletionTimestamp) {
    return {
      title: 'Detaching',
      text: 'The attachment is being deleted.',
      tone: 'info',
      step: -1,
      settled: true,
    };
  }
  if (phase === 'Attached') {
    const bound = printable(status.device) || device;
    return {
      title: `Attached to ${vm}`,
      text: `${bound} is in ${vm}.`,
      tone: 'success',
      step: 3,
      settled: true,
    };
  }
  if (phase in WAITING) {
    return {
      title: phase === 'Failed' ? 'Failed' : `${phase}: not attached yet`,
      text: message || printable(status.lastError, 512) || WAITING[phase],
      tone: PHASE_TONE[phase] === 'red' ? 'danger' : 'warning',
      step: -1,
      settled: true,
    };
  }
  const step = STEP_OF_PHASE[phase] ?? 0;
  const defaults = [
    'Waiting for the controller to bind a device.',
    `Bound to ${printable(status.device)} on ${printable(status.node)}; waiting for its node's agent.`,
    "The node's agent is connecting the device to the VM's usbredir slot.",
  ];
  return {
    title: `Attaching ${device} to ${vm}`,
    text: message || defaults[step],
    tone: 'info',
    step,
    settled: false,
  };
};

/** Progress of a detach; `attachment` undefined: it is gone, the VM let go. */
export const detachProgress = (attachment: USBAttachment | undefined, vm: string): Progress => {
  if (!attachment) {
    return {
      title: `Detached from ${vm}`,
      text: 'The device was released and is free again.',
      tone: 'success',
      step: -1,
      settled: true,
    };
  }
  const phase = printable(attachment.status?.phase ?? 'Pending', 32);
  return {
    title: `Detaching from ${vm}`,
    text: `Waiting for the device to be released (now ${phase}).`,
    tone: 'info',
    step: -1,
    settled: false,
  };
};
