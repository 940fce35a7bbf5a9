/* Device selectors: shown as the user would type them, and typed ones read into the API's
 * `spec.device` (the rules of src/kubevirt_usb/web/forms.py: parse_selector). Pure. */
import type { DeviceSelector } from './models';
import { printable } from './text';

export const SELECTOR_HELP =
  'name=DEVICE, serial=S, vendor=VVVV, product=PPPP, productName=TEXT, node=N, port=P, or VVVV:PPPP, separated by commas';

const SHOWN: [keyof DeviceSelector, string][] = [
  ['name', 'name'],
  ['vendorId', 'vendor'],
  ['productId', 'product'],
  ['serial', 'serial'],
  ['product', 'productName'],
  ['node', 'node'],
  ['port', 'port'],
];

/** A selector as the user would type it: serial=AAA1, node=node1. */
export const selectorSummary = (
  selector: DeviceSelector | null | undefined,
  empty = 'any device',
): string => {
  const parts = SHOWN.filter(([key]) => selector?.[key]).map(
    ([key, label]) => `${label}=${printable(selector?.[key], 64)}`,
  );
  return parts.length ? parts.join(', ') : empty;
};

const KEYS: Record<string, keyof DeviceSelector> = {
  name: 'name',
  serial: 'serial',
  vendor: 'vendorId',
  vendorid: 'vendorId',
  product: 'productId',
  productid: 'productId',
  productname: 'product',
  node: 'node',
  port: 'port',
};

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const isDNSLabel = (value: string): boolean => value.length <= 63 && DNS_LABEL.test(value);
export const isDNSSubdomain = (value: string): boolean =>
  value.length <= 253 && DNS_SUBDOMAIN.test(value);

const HEX4 = /^[0-9a-f]{4}$/;
const PORT = /^[0-9]+-[0-9]+(\.[0-9]+)*$/;
const IDS = /^([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;

export type Parsed = { selector: DeviceSelector } | { error: string };

const problem = (key: keyof DeviceSelector, value: string): string | undefined => {
  switch (key) {
    case 'vendorId':
    case 'productId':
      return HEX4.test(value) ? undefined : `${key} must be 4 hex digits, not '${value}'`;
    case 'name':
    case 'node':
      return isDNSSubdomain(value) ? undefined : `${key} '${value}' is not a valid name`;
    case 'port':
      return PORT.test(value) ? undefined : `port must be a port path like 3-1.4, not '${value}'`;
    default:
      return value.length <= 256 ? undefined : `${key} is longer than 256 characters`;
  }
};

/** A typed selector (`serial=AAA1, node=node1` or `0781:5567`) as the API's `spec.device`. */
export const parseSelector = (text: string): Parsed => {
  const hidden = CONTROL.exec(text);
  if (hidden) {
    return {
      error: `the selector holds a control character: type only visible characters, or pick the device from the list`,
    };
  }
  const selector: DeviceSelector = {};
  for (const part of text.split(',').map((p) => p.trim())) {
    if (!part) {
      continue;
    }
    const ids = IDS.exec(part);
    if (ids) {
      selector.vendorId = ids[1].toLowerCase();
      selector.productId = ids[2].toLowerCase();
      continue;
    }
    const at = part.indexOf('=');
    const key = at < 0 ? undefined : KEYS[part.slice(0, at).trim().toLowerCase()];
    if (key === undefined) {
      return { error: `cannot read '${part}' in the selector: use ${SELECTOR_HELP}` };
    }
    let value = part.slice(at + 1).trim();
    if (key === 'vendorId' || key === 'productId') {
      value = value.toLowerCase();
    }
    selector[key] = value;
  }
  const keys = Object.keys(selector) as (keyof DeviceSelector)[];
  if (!keys.length) {
    return { error: `the selector is empty: use ${SELECTOR_HELP}` };
  }
  const problems = keys
    .map((key) => problem(key, selector[key] ?? ''))
    .filter((p): p is string => p !== undefined);
  return problems.length
    ? { error: `the selector is not valid: ${problems.join('; ')}` }
    : { selector };
};
