/* A VM's USB attachments and its four usbredir slots, computed from API objects without I/O
 * (src/kubevirt_usb/web/views.py: attachment_row, slots). */
import type { AttachmentPhase, USBAttachment } from './models';
import { selectorSummary } from './selectors';
import { age, count, formatBytes, printable } from './text';

/** KubeVirt gives every VMI four usbredir slots. */
export const SLOTS = 4;

/** Phases of an attachment that holds a device, and so one of its VM's slots. */
export const BOUND_PHASES: ReadonlySet<string> = new Set<AttachmentPhase>([
  'Bound',
  'Connecting',
  'Attached',
  'Failed',
]);

export type Tone = 'green' | 'blue' | 'orange' | 'red' | 'grey';

export const PHASE_TONE: Record<string, Tone> = {
  Attached: 'green',
  Bound: 'blue',
  Connecting: 'blue',
  Pending: 'blue',
  Detaching: 'blue',
  WaitingForDevice: 'orange',
  VMNotReady: 'orange',
  NoFreeSlot: 'orange',
  NotAllowed: 'red',
  Failed: 'red',
};

export interface AttachmentRow {
  name: string;
  namespace: string;
  vm: string;
  wants: string;
  phase: string;
  shownPhase: string;
  message: string;
  device: string;
  node: string;
  toVM: string;
  fromVM: string;
  bytesToVM: number;
  bytesFromVM: number;
  reconnects: number;
  lastError: string;
  since: string;
  sinceAge: string;
  created: string;
  detaching: boolean;
}

export const attachmentRow = (attachment: USBAttachment, now: Date): AttachmentRow => {
  const meta = attachment.metadata ?? {};
  const status = attachment.status ?? {};
  const since = status.attachedSince ?? meta.creationTimestamp ?? '';
  const phase = printable(status.phase ?? 'Pending', 32);
  const detaching = Boolean(meta.deletionTimestamp);
  return {
    name: printable(meta.name),
    namespace: printable(meta.namespace),
    vm: printable(attachment.spec?.vm),
    wants: selectorSummary(attachment.spec?.device),
    phase,
    shownPhase: detaching ? 'Detaching' : phase,
    message: printable(status.message, 512),
    device: printable(status.device),
    node: printable(status.node),
    toVM: formatBytes(count(status.bytesToVM)),
    fromVM: formatBytes(count(status.bytesFromVM)),
    bytesToVM: count(status.bytesToVM),
    bytesFromVM: count(status.bytesFromVM),
    reconnects: count(status.reconnects),
    lastError: printable(status.lastError, 512),
    since,
    sinceAge: age(since, now),
    created: meta.creationTimestamp ?? '',
    detaching,
  };
};

const byKey = (a: string[], b: string[]): number => {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      return a[i] < b[i] ? -1 : 1;
    }
  }
  return 0;
};

/** Rows for the attachments of `vm`, in the order they were made. */
export const attachmentRows = (
  attachments: USBAttachment[],
  vm: string,
  now: Date,
): AttachmentRow[] =>
  attachments
    .filter((a) => a.spec?.vm === vm)
    .map((a) => attachmentRow(a, now))
    .sort((a, b) => byKey([a.created, a.name], [b.created, b.name]));

export interface Slot {
  position: number;
  attachment?: AttachmentRow;
}

/** The VM's four slots: first those its attachments hold (oldest first), then free ones.
 * KubeVirt does not say which slot a stream landed in, so slots are shown by use, not number. */
export const slots = (rows: AttachmentRow[]): Slot[] => {
  const holders = rows
    .filter((r) => BOUND_PHASES.has(r.phase) && !r.detaching)
    .sort((a, b) => byKey([a.since || a.created, a.name], [b.since || b.created, b.name]))
    .slice(0, SLOTS);
  return Array.from({ length: SLOTS }, (_, i) => ({ position: i + 1, attachment: holders[i] }));
};
