/* Which USBPolicy to create or change so a namespace may (or may no longer) attach one device:
 * the same objects `kubectl usb allow DEVICE -n NS` creates and extends
 * (src/kubevirt_usb/kubectl_usb/policy.py: a policy named after its selector, e.g.
 * allow-device-node1-3-1, extended when one with exactly that selector exists). Pure. */
import type { Patch } from '@openshift-console/dynamic-plugin-sdk';
import { API_VERSION, type DeviceSelector, type USBPolicy } from './models';
import { selectorSummary } from './selectors';
import { age, printable } from './text';

const NOT_DNS = /[^a-z0-9-]+/g;

/** `parts` as a DNS-1123 name, possibly lossy (kubectl_usb/objects.py: readable). */
export const readableName = (parts: string[], limit = 63): string => {
  const raw = parts.filter(Boolean).join('-');
  const name =
    raw
      .toLowerCase()
      .replace(NOT_DNS, '-')
      .replace(/^-+|-+$/g, '') || 'x';
  return name.slice(0, limit).replace(/-+$/, '');
};

const SELECTOR_KEYS: (keyof DeviceSelector)[] = [
  'name',
  'vendorId',
  'productId',
  'serial',
  'product',
  'node',
  'port',
];

const sameSelector = (a: DeviceSelector | undefined, b: DeviceSelector): boolean =>
  SELECTOR_KEYS.every((k) => (a?.[k] ?? undefined) === (b[k] ?? undefined));

export type GrantPlan =
  | { kind: 'create'; policy: USBPolicy }
  | { kind: 'extend'; policy: USBPolicy; patch: Patch[]; namespaces: string[] }
  | { kind: 'unchanged'; policy: USBPolicy };

/** Grant `namespace` the use of USBDevice `device` (a selector by name, as `allow DEVICE`). */
export const planGrant = (policies: USBPolicy[], device: string, namespace: string): GrantPlan => {
  const selector: DeviceSelector = { name: device };
  const first = readableName(['allow', 'device', device]);
  const same = policies
    .filter((p) => sameSelector(p.spec?.devices, selector) && !p.spec?.namespaceSelector)
    .sort((a, b) => {
      const an = a.metadata?.name ?? '';
      const bn = b.metadata?.name ?? '';
      return Number(bn === first) - Number(an === first) || (an < bn ? -1 : an > bn ? 1 : 0);
    });
  if (same.length) {
    const policy = same[0];
    const have = policy.spec?.namespaces ?? [];
    if (have.includes(namespace)) {
      return { kind: 'unchanged', policy };
    }
    return {
      kind: 'extend',
      policy,
      namespaces: [...have, namespace],
      patch: namespacesPatch(policy, [...have, namespace]),
    };
  }
  const taken = new Set(policies.map((p) => p.metadata?.name));
  const name = [
    first,
    ...Array.from({ length: 8 }, (_, i) => `${first.slice(0, 58)}-${String(i + 2)}`),
  ].find((n) => !taken.has(n));
  return {
    kind: 'create',
    policy: {
      apiVersion: API_VERSION,
      kind: 'USBPolicy',
      metadata: {
        name: name ?? `${first.slice(0, 50)}-console`,
        labels: { 'app.kubernetes.io/managed-by': 'kubevirt-usb-console-plugin' },
      },
      spec: { namespaces: [namespace], devices: selector },
    },
  };
};

/** A JSON patch that sets the policy's namespaces, only to the version read (a concurrent change
 * makes the API refuse it instead of being lost). */
export const namespacesPatch = (policy: USBPolicy, namespaces: string[]): Patch[] => [
  { op: 'test', path: '/metadata/resourceVersion', value: policy.metadata?.resourceVersion },
  { op: policy.spec?.namespaces ? 'replace' : 'add', path: '/spec/namespaces', value: namespaces },
];

/** The patch removing `namespace` from a policy (undefined: it is not there). */
export const revokePatch = (policy: USBPolicy, namespace: string): Patch[] | undefined => {
  const have = policy.spec?.namespaces ?? [];
  return have.includes(namespace)
    ? namespacesPatch(
        policy,
        have.filter((n) => n !== namespace),
      )
    : undefined;
};

export interface PolicyRow {
  name: string;
  namespaces: string[];
  namespaceSelector: string;
  devices: string;
  age: string;
  policy: USBPolicy;
}

const labelSelectorSummary = (selector: NonNullable<USBPolicy['spec']>['namespaceSelector']) => {
  if (!selector) {
    return '';
  }
  const parts = Object.entries(selector.matchLabels ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`);
  for (const req of selector.matchExpressions ?? []) {
    const values = (req.values ?? []).join(',');
    parts.push(values ? `${req.key} ${req.operator} (${values})` : `${req.key} ${req.operator}`);
  }
  return printable(parts.join(', '), 512);
};

export const policyRows = (policies: USBPolicy[], now: Date): PolicyRow[] =>
  policies
    .map((p) => ({
      name: printable(p.metadata?.name),
      namespaces: (p.spec?.namespaces ?? []).map((n) => printable(n, 63)),
      namespaceSelector: labelSelectorSummary(p.spec?.namespaceSelector),
      devices: selectorSummary(p.spec?.devices, 'every device'),
      age: age(p.metadata?.creationTimestamp, now),
      policy: p,
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

/** Policies that name this device by name, the ones the devices page can revoke from. */
export const policiesForDevice = (policies: USBPolicy[], device: string): USBPolicy[] =>
  policies.filter((p) => p.spec?.devices?.name === device);
