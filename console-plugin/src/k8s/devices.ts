/* The devices page's rows, computed from API objects without I/O: one USBDevice per row, grouped
 * by node and filtered (src/kubevirt_usb/web/views.py: device_row, DeviceFilter). */
import type { USBAttachment, USBDevice } from './models';
import { age, printable } from './text';

export const DEVICE_STATES = ['Available', 'In use', 'Absent'] as const;
export type DeviceState = (typeof DEVICE_STATES)[number];

export interface DeviceRow {
  name: string;
  node: string;
  ids: string;
  product: string;
  catalogName: string;
  manufacturer: string;
  serial: string;
  port: string;
  identityTier: string;
  identityKey: string;
  state: DeviceState;
  claimNamespace: string;
  claimVM: string;
  attachment: string;
  since: string;
  sinceAge: string;
  lastSeen: string;
  lastSeenAge: string;
}

/** The first value that is a non-empty string (an empty product string counts as none). */
const firstText = (...values: (string | null | undefined)[]): string | undefined =>
  values.find((v): v is string => typeof v === 'string' && v !== '');

const key = (namespace: unknown, name: unknown) => `${String(namespace)}/${String(name)}`;

export const attachmentIndex = (attachments: USBAttachment[]): Map<string, USBAttachment> =>
  new Map(attachments.map((a) => [key(a.metadata?.namespace, a.metadata?.name), a]));

export const deviceRow = (
  device: USBDevice,
  attachments: Map<string, USBAttachment>,
  now: Date,
): DeviceRow => {
  const status = device.status ?? {};
  const claim = device.spec?.claimRef ?? undefined;
  const vid = status.vendorId ?? '????';
  const pid = status.productId ?? '????';
  const absent = status.present === false || status.state === 'Absent';
  const state: DeviceState = absent ? 'Absent' : claim ? 'In use' : 'Available';
  let since: string | null | undefined = device.metadata?.creationTimestamp;
  if (absent) {
    since = status.absentSince ?? since;
  } else if (claim) {
    since = attachments.get(key(claim.namespace, claim.attachment))?.status?.attachedSince;
  }
  const catalog = [status.vendorName, status.productName].filter(Boolean).join(' ');
  return {
    name: printable(device.metadata?.name),
    node: printable(status.node),
    ids: printable(`${vid}:${pid}`),
    product: printable(firstText(status.product, status.productName) ?? `${vid}:${pid}`),
    catalogName: printable(catalog),
    manufacturer: printable(status.manufacturer),
    serial: printable(status.serial),
    port: printable(status.portPath),
    identityTier: printable(status.identity?.tier ?? ''),
    identityKey: printable(status.identity?.key ?? ''),
    state,
    claimNamespace: printable(claim?.namespace ?? ''),
    claimVM: printable(claim?.vm ?? ''),
    attachment: printable(claim?.attachment ?? ''),
    since: since ?? '',
    sinceAge: age(since, now),
    lastSeen: status.lastSeen ?? '',
    lastSeenAge: age(status.lastSeen, now),
  };
};

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export const deviceRows = (
  devices: USBDevice[],
  attachments: USBAttachment[],
  now: Date,
): DeviceRow[] => {
  const index = attachmentIndex(attachments);
  return devices
    .map((d) => deviceRow(d, index, now))
    .sort((a, b) => compare(a.node, b.node) || compare(a.port, b.port) || compare(a.name, b.name));
};

export const usedBy = (row: DeviceRow): string =>
  row.claimVM ? `${row.claimNamespace}/${row.claimVM}` : '';

/** How a device is named in a choice list: product, serial, node. */
export const deviceLabel = (row: DeviceRow): string =>
  `${row.product}${row.serial ? ` (${row.serial})` : ''} on ${row.node}`;

export interface DeviceFilter {
  node: string;
  state: string;
  text: string;
}
export const NO_FILTER: DeviceFilter = { node: '', state: '', text: '' };

export const keepDevice = (filter: DeviceFilter, row: DeviceRow): boolean => {
  const text = filter.text.trim().toLowerCase();
  const haystack = [
    row.name,
    row.ids,
    row.product,
    row.catalogName,
    row.manufacturer,
    row.serial,
    row.port,
    usedBy(row),
  ]
    .join(' ')
    .toLowerCase();
  return (
    (!filter.node || row.node === filter.node) &&
    (!filter.state || row.state === filter.state) &&
    (!text || haystack.includes(text))
  );
};

export interface NodeGroup {
  node: string;
  rows: DeviceRow[];
}

/** Rows grouped by node (nodes in name order), after the filter. */
export const devicesByNode = (rows: DeviceRow[], filter: DeviceFilter = NO_FILTER): NodeGroup[] => {
  const groups = new Map<string, DeviceRow[]>();
  for (const row of rows.filter((r) => keepDevice(filter, r))) {
    groups.set(row.node, [...(groups.get(row.node) ?? []), row]);
  }
  return [...groups.keys()].sort(compare).map((node) => ({ node, rows: groups.get(node) ?? [] }));
};

export const nodeNames = (rows: DeviceRow[]): string[] =>
  [...new Set(rows.map((r) => r.node))].sort(compare);
